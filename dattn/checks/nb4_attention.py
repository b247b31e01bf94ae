"""Notebook 4: the two matmuls and the softmax of attention, and what they cost."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from .. import attention
from .core import (
    BadAnswer,
    Verdict,
    as_number,
    as_tensor_result,
    close,
    first_match,
    fresh_seed,
    garbage,
    not_a_function,
    register,
    run_learner,
    verdict,
)

register(
    "attention_flops", "04",
    hint="two matmuls per head: scores q^T k (HW x c times c x Ns) and weights times v (HW x Ns times Ns x c); "
         "a product of (m x n) by (n x p) takes m*n*p multiply-adds, and a multiply-add is 2 FLOPs.",
    solution="""\
B, heads, HW, Ns, c = 1, 8, 400, 100, 64          # 20x20 map, stride 2: a 10x10 key grid; c = 512 / 8
scores = 2 * B * heads * HW * Ns * c              # q^T k: HW x Ns scores of c multiply-adds each
mix = 2 * B * heads * HW * Ns * c                 # weights x v: HW x c outputs of Ns multiply-adds each
print(f"{scores + mix:,}")                        # 81,920,000""",
)
register(
    "attention", "04",
    hint="scores = einsum('n c m, n c k -> n m k', q, k) * scale; softmax over the keys (the last axis), so each "
         "query's weights sum to 1; out = einsum('n m k, n c k -> n c m', weights, v).",
    solution="""\
def my_attention(q, k, v, scale):
    scores = torch.einsum("n c m, n c k -> n m k", q, k) * scale   # (N, HW, Ns)
    weights = scores.softmax(dim=-1)                               # over the keys: each row sums to 1
    return torch.einsum("n m k, n c k -> n c m", weights, v)       # (N, c, HW)""",
)


def check_attention_flops(answer, B: int, n_heads: int, HW: int, Ns: int, head_dim: int, *,
                          show_solution: bool = False) -> Verdict:
    """Exercise ``attention_flops``: FLOPs of the two attention matmuls (q^T k and weights times v), a
    multiply-add counting 2. Exact: a FLOP count is a whole number the notebook prints in full."""
    key = "attention_flops"
    try:
        got = as_number(answer, "one whole number of FLOPs")
    except BadAnswer as err:
        return garbage(key, str(err), show_solution)
    one = 2 * B * n_heads * HW * Ns * head_dim  # one matmul
    want = 2 * one
    if got == want:
        return verdict(key, True, f"{want:,} FLOPs: two matmuls of 2*B*heads*HW*Ns*c each.",
                       show_solution=show_solution)
    C = n_heads * head_dim
    mistakes = [
        ("one_matmul", one, "that counts one matmul, or multiply-adds as 1 FLOP: there are two matmuls (q^T k, "
                            "then weights times v) and a multiply-add is 2 FLOPs."),
        ("one_matmul_macs", one // 2, "that is one matmul with multiply-adds counted once: count both matmuls, "
                                      "2 FLOPs per multiply-add."),
        ("dense", 4 * B * n_heads * HW * HW * head_dim,
         "that is dense attention (HW keys); DAttention's queries attend to the Ns sampled keys only."),
        ("full_channels", 4 * B * n_heads * HW * Ns * C,
         "each head works on C / heads channels, not on all C."),
        ("no_heads", 4 * B * HW * Ns * head_dim, "every one of the heads does its own two products."),
        ("double", 2 * want, "that counts everything twice."),
    ]
    found = first_match(got, [(n, float(v), t) for n, v, t in mistakes if v != want], 0)
    if found:
        return verdict(key, False, found[1], found[0], show_solution)
    extra = got - want
    if 0 < extra <= 10 * B * n_heads * HW * Ns:
        return verdict(key, False, "only the two matmuls are counted here: leave the softmax and the scaling out.",
                       "softmax", show_solution)
    side = "many" if got > want else "few"
    return verdict(key, False, f"{got:,.0f} is too {side}.", "other", show_solution)


def _reference(q, k, v, scale, dim=-1, after=False, no_softmax=False):
    s = torch.einsum("n c m, n c k -> n m k", q, k)
    if not after:
        s = s * scale
    w = s if no_softmax else s.softmax(dim=dim)
    if after:
        w = w * scale
    return torch.einsum("n m k, n c k -> n c m", w, v)


def _attention_helpers() -> dict[str, Callable]:
    return {
        "dattn.attention.attention_explicit": attention.attention_explicit,
        "dattn.attention.attention_fused": attention.attention_fused,
        "torch.nn.functional.scaled_dot_product_attention": F.scaled_dot_product_attention,
        "torch.nn.functional.multi_head_attention_forward": F.multi_head_attention_forward,
    }


def check_attention(fn, *, seed: int | None = None, show_solution: bool = False) -> Verdict:
    """Exercise ``attention``: ``fn(q (N, c, HW), k (N, c, Ns), v (N, c, Ns), scale)`` returns
    softmax(q^T k * scale) v as (N, c, HW). Checked on tensors made at check time, with dattn's attention
    and torch's fused kernels switched off."""
    key = "attention"
    bad = not_a_function(key, fn, show_solution)
    if bad is not None:
        return bad
    rng = np.random.default_rng(fresh_seed(seed))
    for _ in range(2):
        N, c, HW, Ns = int(rng.integers(2, 4)), int(rng.choice([4, 8])), int(rng.integers(9, 17)), \
            int(rng.integers(3, 8))
        q, k, v = (torch.from_numpy(rng.normal(size=(N, c, n))) for n in (HW, Ns, Ns))  # float64
        scale = c**-0.5
        want = _reference(q, k, v, scale)
        run = run_learner(fn, (q.clone(), k.clone(), v.clone(), scale), _attention_helpers())
        if run.helper:
            return verdict(key, False, f"your function calls {run.helper}, which the check switches off: write "
                                       f"the two products and the softmax yourself.", "cheat", show_solution,
                           with_hint=False)
        if run.error is not None:
            return verdict(key, False, f"with q {tuple(q.shape)}, k and v {tuple(k.shape)} your function raised "
                                       f"{type(run.error).__name__}: {run.error}", "raised", show_solution)
        shape = tuple(np.shape(run.result)) if not isinstance(run.result, (str, bytes)) else ()
        if shape == (N, HW, Ns):
            return verdict(key, False, "you returned the weights (N, HW, Ns): one matmul more, weights times v.",
                           "one_matmul", show_solution)
        if shape == (N, HW, c) and HW != c:
            return verdict(key, False, "your output is (N, HW, c); the layout here is channels first, (N, c, HW).",
                           "transposed", show_solution)
        try:
            got = as_tensor_result(run.result, (N, c, HW), "the output (N, c, HW)")
        except BadAnswer as err:
            return garbage(key, str(err), show_solution)
        if not close(got, want, 6):
            mistakes = [
                ("no_scale", _reference(q, k, v, 1.0), "the scores are scaled by `scale` before the softmax."),
                ("divide_by_scale", _reference(q, k, v, 1 / scale), "multiply the scores by `scale` (it is already "
                                                                     "1 / sqrt(c)), do not divide by it."),
                ("softmax_over_queries", _reference(q, k, v, scale, dim=1),
                 "the softmax runs over the keys (the last axis), so that each query's weights sum to 1."),
                ("scale_after_softmax", _reference(q, k, v, scale, after=True),
                 "scale the scores before the softmax, not the weights after it."),
                ("no_softmax", _reference(q, k, v, scale, no_softmax=True),
                 "the scores go through a softmax before they weigh v."),
            ]
            found = first_match(got.numpy(), [(n, m.numpy(), t) for n, m, t in mistakes], 6)
            name, text = found or ("other", "your output differs from softmax(q^T k * scale) v.")
            return verdict(key, False, text, name, show_solution)
    return verdict(key, True, "your attention equals the module's on tensors you had not seen.",
                   show_solution=show_solution)
