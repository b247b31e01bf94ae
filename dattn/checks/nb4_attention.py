"""Notebook 4: what the two attention matmuls cost, and the multi-head attention with a position bias."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange

from .. import attention
from ..offsets import key_grid_size
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
    "multihead_bias", "04",
    hint="split the C channels into heads as the module does, '(hd c)': head h owns channels h*c .. (h+1)*c - 1, "
         "with c = C / n_heads; scale the scores by 1/sqrt(c), add the head's bias to the scaled scores, then the "
         "softmax over the keys; weigh v, and put the heads back in the same '(hd c)' order.",
    solution="""\
from einops import rearrange


def my_attention(q, k, v, bias, n_heads):
    qh, kh, vh = (rearrange(t, "b (hd c) n -> (b hd) c n", hd=n_heads) for t in (q, k, v))  # (B*heads, c, HW | Ns)
    scale = qh.shape[1] ** -0.5                                     # 1 / sqrt(c): c channels of ONE head
    scores = torch.einsum("n c m, n c k -> n m k", qh, kh) * scale  # (B*heads, HW, Ns)
    scores = scores + rearrange(bias, "b hd m k -> (b hd) m k")     # the bias joins the scaled scores...
    weights = scores.softmax(dim=-1)                                # ...before the softmax over the keys
    out = torch.einsum("n m k, n c k -> n c m", weights, vh)        # (B*heads, c, HW)
    return rearrange(out, "(b hd) c m -> b (hd c) m", hd=n_heads)   # (B, C, HW)""",
)


def check_attention_flops(answer, B: int, n_heads: int, HW: int, Ns: int, head_dim: int, *,
                          show_solution: bool = False) -> Verdict:
    """Exercise ``attention_flops``: FLOPs of the two attention matmuls (q^T k and weights times v), a
    multiply-add counting 2. Exact: a FLOP count is a whole number the notebook prints in full."""
    return _judge_flops(answer, B, n_heads, HW, Ns, head_dim, [], show_solution)


def check_layer_attention_flops(answer, B: int, n_heads: int, channel: int, size: int, stride: int,
                                ksize: int = 3, *, show_solution: bool = False) -> Verdict:
    """Exercise ``attention_flops`` given the layer as the notebook states it (a ``size`` x ``size`` map of
    ``channel`` channels at ``stride``), so that the check's arguments do not give away the key count or the
    channels per head. Also diagnoses a key grid taken as HW / stride."""
    HW = size * size
    Hk, Wk = key_grid_size(size, size, ksize, stride)
    head_dim = channel // n_heads
    extra = [("keys_hw_over_stride", 4 * B * n_heads * HW * (HW // stride) * head_dim,
              "HW / stride divides the pixel count once; the key grid is stride times coarser along each axis, "
              "so it has about HW / stride^2 keys (the offset network's conv formula gives the exact grid).")]
    return _judge_flops(answer, B, n_heads, HW, Hk * Wk, head_dim, extra, show_solution)


def _judge_flops(answer, B: int, n_heads: int, HW: int, Ns: int, head_dim: int, extra: list,
                 show_solution: bool) -> Verdict:
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
    mistakes = [  # the caller's own mistakes first: at stride 2, HW / stride keys also count "everything twice"
        *extra,
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


def _reference(q, k, v, bias, n_heads, *, split="(hd c)", merge="(hd c)", scale=None, bias_at="logits",
               softmax_dim=-1):
    """The multi-head biased attention, and the variants that likely mistakes compute (chosen by keyword)."""
    qh, kh, vh = (rearrange(t, f"b {split} n -> (b hd) c n", hd=n_heads) for t in (q, k, v))  # (B*h, c, HW|Ns)
    c = qh.shape[1]
    s = torch.einsum("n c m, n c k -> n m k", qh, kh)  # (B*h, HW, Ns)
    b = rearrange(bias, "b hd m k -> (b hd) m k")
    s = s * (c**-0.5 if scale is None else scale)
    if bias_at == "logits":
        s = s + b
    elif bias_at == "before_scale":  # (q.k + bias) * scale
        s = s + b * (c**-0.5 if scale is None else scale)
    w = s.softmax(dim=softmax_dim)
    if bias_at == "weights":
        w = w + b
    out = torch.einsum("n m k, n c k -> n c m", w, vh)  # (B*h, c, HW)
    return rearrange(out, f"(b hd) c m -> b {merge} m", hd=n_heads)


def _attention_helpers() -> dict[str, Callable]:
    return {
        "dattn.attention.attention_explicit": attention.attention_explicit,
        "dattn.attention.attention_fused": attention.attention_fused,
        "torch.nn.functional.scaled_dot_product_attention": F.scaled_dot_product_attention,
        "torch.nn.functional.multi_head_attention_forward": F.multi_head_attention_forward,
    }


def _shapes(rng: np.random.Generator) -> tuple[int, int, int, int, int]:
    """B, heads, c, HW, Ns with every axis length distinct, so that a wrong layout cannot pass by accident."""
    while True:
        B, h, c = 2, int(rng.choice([3, 4])), int(rng.choice([5, 6]))
        HW, Ns = int(rng.integers(9, 17)), int(rng.integers(6, 9))
        if len({B, h, c, h * c, HW, Ns}) == 6:
            return B, h, c, HW, Ns


def check_multihead_attention(fn, *, seed: int | None = None, show_solution: bool = False) -> Verdict:
    """Exercise ``multihead_bias``: ``fn(q (B, C, HW), k (B, C, Ns), v (B, C, Ns), bias (B, heads, HW, Ns),
    n_heads)`` returns the multi-head attention with an additive position bias, (B, C, HW): heads split as
    ``(hd c)``, scores scaled by 1/sqrt(C / heads), the bias added before the softmax over the keys, heads merged
    back. Checked on tensors made at check time, with dattn's attention and torch's fused kernels switched off."""
    key = "multihead_bias"
    bad = not_a_function(key, fn, show_solution)
    if bad is not None:
        return bad
    rng = np.random.default_rng(fresh_seed(seed))
    for _ in range(2):
        B, h, c, HW, Ns = _shapes(rng)
        C = h * c
        q, k, v = (torch.from_numpy(rng.normal(size=(B, C, n))) for n in (HW, Ns, Ns))  # float64
        bias = torch.from_numpy(rng.normal(scale=2.0, size=(B, h, HW, Ns)))
        want = _reference(q, k, v, bias, h)
        run = run_learner(fn, (q.clone(), k.clone(), v.clone(), bias.clone(), h), _attention_helpers())
        if run.helper:
            return verdict(key, False, f"your function calls {run.helper}, which the check switches off: write "
                                       f"the split, the two products, the softmax and the merge yourself.", "cheat",
                           show_solution, with_hint=False)
        if run.error is not None:
            return verdict(key, False, f"with q {tuple(q.shape)}, k and v {tuple(k.shape)}, bias {tuple(bias.shape)} "
                                       f"and n_heads={h} your function raised {type(run.error).__name__}: "
                                       f"{run.error}", "raised", show_solution)
        shape = tuple(np.shape(run.result)) if not isinstance(run.result, (str, bytes)) else ()
        if shape in ((B, h, HW, Ns), (B * h, HW, Ns)):
            return verdict(key, False, "you returned the weights (one row per query): one product more, weights "
                                       "times v, then merge the heads.", "weights", show_solution)
        if shape in ((B * h, c, HW), (B, h, c, HW)):
            return verdict(key, False, "your output still has a head axis: merge the heads back into the "
                                       "channels, (B, C, HW).", "not_merged", show_solution)
        if shape == (B, HW, C):
            return verdict(key, False, "your output is (B, HW, C); the layout here is channels first, (B, C, HW).",
                           "transposed", show_solution)
        try:
            got = as_tensor_result(run.result, (B, C, HW), "the output (B, C, HW)")
        except BadAnswer as err:
            return garbage(key, str(err), show_solution)
        if not close(got, want, 6):
            kw = dict(bias=bias, n_heads=h)
            mistakes = [
                ("no_bias", _reference(q, k, v, 0 * bias, h), "the position bias is missing: add it to the scores."),
                ("bias_after_softmax", _reference(q, k, v, bias_at="weights", **kw),
                 "the bias was added to the weights after the softmax: it joins the scaled scores before it, so the "
                 "weights still sum to 1."),
                ("bias_scaled", _reference(q, k, v, bias_at="before_scale", **kw),
                 "the bias was multiplied by the scale too: only q.k is scaled, the bias is added afterwards."),
                ("scale_all_channels", _reference(q, k, v, scale=C**-0.5, **kw),
                 "the scale uses all C channels: a head's dot product runs over its own c = C / n_heads channels, "
                 "so the scale is 1/sqrt(c)."),
                ("no_scale", _reference(q, k, v, scale=1.0, **kw), "the scores are not scaled: multiply q.k by "
                                                                   "1/sqrt(c) before adding the bias."),
                ("softmax_over_queries", _reference(q, k, v, softmax_dim=1, **kw),
                 "the softmax ran over the queries; it runs over the keys, so that each query's weights sum to 1."),
                ("heads_interleaved", _reference(q, k, v, split="(c hd)", merge="(c hd)", **kw),
                 "the heads were taken as '(c hd)', every n_heads-th channel; the module's head h owns a block of "
                 "consecutive channels, '(hd c)'."),
                ("merge_interleaved", _reference(q, k, v, merge="(c hd)", **kw),
                 "the split is right but the merge is '(c hd)': put the heads back in the order you split them, "
                 "'(hd c)'."),
                ("split_interleaved", _reference(q, k, v, split="(c hd)", **kw),
                 "the merge is right but the split is '(c hd)': head h owns channels h*c .. (h+1)*c - 1, '(hd c)'."),
            ]
            found = first_match(got.numpy(), [(n, m.numpy(), t) for n, m, t in mistakes], 6)
            name, text = found or ("other", "your output differs from the multi-head attention with the bias.")
            return verdict(key, False, text, name, show_solution)
    return verdict(key, True, "your multi-head attention with a position bias is right on tensors you had not seen.",
                   show_solution=show_solution)
