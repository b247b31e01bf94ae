"""Measuring cost on a CPU: FLOPs by torch's counter, interleaved timings, peak tensor memory of one call."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import math
import numbers
import statistics
import time
import weakref
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode


def sdpa_cpu_flops(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of the CPU attention kernel's forward: scores q k^T, then weights times v."""
    b, h, s_q, d_q = query_shape
    s_k, d_v = key_shape[-2], value_shape[-1]
    return 2 * b * h * s_q * s_k * (d_q + d_v)


def sdpa_cpu_backward_flops(grad_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    """FLOPs of its backward, as torch counts the other attention kernels: the scores again (q k^T), then
    the gradients of the weights (grad v^T), of v, of q and of k."""
    b, h, s_q, d_q = query_shape
    s_k, d_v = key_shape[-2], value_shape[-1]
    return 2 * b * h * s_q * s_k * (3 * d_q + 2 * d_v)


# torch's counter knows the CUDA attention kernels but counts the CPU one as 0 (torch 2.14)
CPU_ATTENTION_FLOPS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: sdpa_cpu_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: sdpa_cpu_backward_flops,
}


def flop_counter() -> FlopCounterMode:
    """torch's FlopCounterMode, silent, counting ``scaled_dot_product_attention`` on the CPU too."""
    return FlopCounterMode(display=False, custom_mapping=CPU_ATTENTION_FLOPS)


def _check_callable(fn, name: str) -> None:
    if not callable(fn):
        raise TypeError(f"{name} expects a function, e.g. lambda: model(x), or a module and its inputs; "
                        f"got a {type(fn).__name__}")


def count_flops(fn: Callable[..., object], *args, **kwargs) -> int:
    """FLOPs of one call ``fn(*args, **kwargs)`` (e.g. ``count_flops(model, x)``), as torch.utils.flop_counter
    counts them (convolutions and matmuls, the attention kernel included; a multiply-add is 2 FLOPs;
    element-wise work is not counted)."""
    _check_callable(fn, "count_flops")
    with flop_counter() as counter:
        fn(*args, **kwargs)
    return counter.get_total_flops()


def interleaved_medians(
    fns: dict[str, Callable[[], object]], reps: int = 5, budget_s: float = 2.0, max_reps: int = 50
) -> dict[str, float]:
    """Median seconds per call of each fn, called in turn so that machine noise hits all of them alike.

    Runs at least ``reps`` rounds, then more until ``budget_s`` seconds or ``max_reps`` rounds have passed.
    """
    if not isinstance(fns, dict) or not fns:
        raise ValueError(f"fns must be a non-empty dict of name -> function, got {fns!r}")
    for name, fn in fns.items():
        _check_callable(fn, f"interleaved_medians[{name!r}]")
    for name, value in (("reps", reps), ("max_reps", max_reps)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if max_reps < reps:
        raise ValueError(f"max_reps ({max_reps}) must be >= reps ({reps})")
    if isinstance(budget_s, bool) or not isinstance(budget_s, numbers.Real) or not math.isfinite(budget_s) \
            or budget_s < 0:
        raise ValueError(f"budget_s must be a finite number of seconds >= 0, got {budget_s!r}")
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


def peak_memory(fn: Callable[..., object], *args, **kwargs) -> int:
    """Peak bytes of tensor storage alive during one call ``fn(*args, **kwargs)``, beyond what existed before it."""
    _check_callable(fn, "peak_memory")
    gc.collect()
    with TensorMemory() as mem:
        fn(*args, **kwargs)
    return mem.peak


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt parameters, from glibc's malloc.h
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's largest mmap threshold on 64-bit machines


def keep_freed_memory(keep_bytes: int = 1 << 30) -> bool:
    """Ask glibc's malloc to keep up to ``keep_bytes`` of freed memory for reuse; True if it took effect.

    By default glibc hands the memory of large freed tensors back to the system, and the next forward pass
    touches it again page by page: about 10,000 page faults and a fifth of the time of a 20x20, batch-8
    DAttention forward on a 2-core CPU. This setting is process-wide and lasts until exit, as setting
    ``MALLOC_TRIM_THRESHOLD_`` and ``MALLOC_MMAP_THRESHOLD_`` before start would, or preloading jemalloc or
    tcmalloc (PyTorch's CPU performance guide). Elsewhere than glibc it does nothing and returns False.
    """
    if isinstance(keep_bytes, bool) or not isinstance(keep_bytes, numbers.Integral) or keep_bytes < 0:
        raise ValueError(f"keep_bytes must be an int >= 0, got {keep_bytes!r}")
    keep_bytes = int(keep_bytes)
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    keep = min(keep_bytes, 2**31 - 1)
    return bool(mallopt(M_TRIM_THRESHOLD, keep)) and bool(mallopt(M_MMAP_THRESHOLD, min(keep, MMAP_THRESHOLD_MAX)))
