"""Measuring cost on a CPU: FLOPs by torch's counter, interleaved timings, peak tensor memory of one call."""

from __future__ import annotations

import gc
import statistics
import time
import weakref
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of one call of fn, as torch.utils.flop_counter counts them (convolutions and matmuls; a
    multiply-add is 2 FLOPs; element-wise work is not counted)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def interleaved_medians(
    fns: dict[str, Callable[[], object]], reps: int = 5, budget_s: float = 2.0, max_reps: int = 50
) -> dict[str, float]:
    """Median seconds per call of each fn, called in turn so that machine noise hits all of them alike.

    Runs at least ``reps`` rounds, then more until ``budget_s`` seconds or ``max_reps`` rounds have passed.
    """
    for fn in fns.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    start = time.perf_counter()
    for n in range(1, max_reps + 1):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t)
        if n >= reps and time.perf_counter() - start > budget_s:
            break
    return {k: statistics.median(v) for k, v in times.items()}


class TensorMemory(TorchDispatchMode):
    """Context manager that follows the bytes of tensor storage created by PyTorch ops inside it.

    ``peak`` is the largest total alive at once and ``live`` what is still alive at the end. Storage made
    before the context (inputs, parameters) is not counted; a view keeps its base's storage alive. Scratch
    memory that a kernel allocates internally and frees before returning is not seen.
    """

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._refs: dict[int, list[int]] = {}  # storage address -> [tensors alive, bytes]

    def _release(self, key: int) -> None:
        ref = self._refs[key]
        ref[0] -= 1
        if ref[0] == 0:
            del self._refs[key]
            self.live -= ref[1]

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        aliasing = any(r.alias_info is not None for r in func._schema.returns)
        for t in tree_flatten(out)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key in self._refs:
                self._refs[key][0] += 1
            elif aliasing or storage.nbytes() == 0:
                continue  # a view or in-place result of storage made outside the context
            else:
                self._refs[key] = [1, storage.nbytes()]
                self.live += storage.nbytes()
                self.peak = max(self.peak, self.live)
            weakref.finalize(t, self._release, key)
        return out


def peak_memory(fn: Callable[[], object]) -> int:
    """Peak bytes of tensor storage alive during one call of fn, beyond what existed before it."""
    gc.collect()
    with TensorMemory() as mem:
        fn()
    return mem.peak
