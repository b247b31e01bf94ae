"""Notebook 5: counting the parameters of a block by hand."""

from __future__ import annotations

from collections import defaultdict

from torch import nn

from .core import BadAnswer, Verdict, as_number, garbage, register, verdict

register(
    "parameter_count", "05",
    hint="count part by part: a bias-free conv has c_in/groups * c_out * k*k weights, BatchNorm and LayerNorm 2 "
         "per channel (scale and shift; running statistics are buffers, not parameters), a conv with bias adds "
         "c_out. DAttention: its offset network once (shared by the groups, on C/groups channels), four 1x1 "
         "projections with bias, and the depth-wise 3x3 position encoding with bias.",
    solution="""\
c = 512                                             # Bottleneck_DAttention(512, 512, [20, 20], k=(1, 3), e=1.0)
cv1 = c * c * 1 * 1 + 2 * c                         # 1x1 Conv, no bias, + BatchNorm (scale, shift)
cv2 = c * c * 3 * 3 + 2 * c                         # 3x3 Conv, no bias, + BatchNorm
Cg = c // 4                                         # the offset network reads one group: 128 channels
offset_net = (Cg * 9 + Cg) + 2 * Cg + Cg * 2        # depth-wise 3x3 with bias, LayerNorm, 1x1 to (dy, dx) without bias
projections = 4 * (c * c + c)                       # q, k, v, out: 1x1 convs with bias
dwc_pe = c * 9 + c                                  # depth-wise 3x3 position encoding with bias
print(f"{cv1 + cv2 + offset_net + projections + dwc_pe:,}")""",
)


def _count(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def mistakes_of(module: nn.Module) -> dict[int, list[str]]:
    """What common counting mistakes add to (or take from) the module's true count: delta -> diagnoses."""
    from ..attention import DAttention  # here, not at import time: checks stay importable on their own

    found: dict[int, list[str]] = defaultdict(list)

    def add(delta: int, text: str) -> None:
        if delta and text not in found[delta]:
            found[delta].append(text)

    norms = [m for m in module.modules() if isinstance(m, nn.BatchNorm2d)]
    add(-sum(2 * m.num_features for m in norms), "the BatchNorm layers were left out (2 parameters per channel: "
                                                 "scale and shift).")
    add(sum(2 * m.num_features for m in norms), "BatchNorm's running mean and variance are buffers, not parameters.")
    add(sum(c.out_channels for c in _yolo_convs(module) if c.bias is None),
        "YOLO's Conv has no bias (BatchNorm's shift does that job).")
    for att in (m for m in module.modules() if isinstance(m, DAttention)):
        off = _count(att.conv_offset)
        add(off * (att.n_groups - 1), "the offset network is counted once: its weights are shared by the groups.")
        add(-off, "DAttention's offset network was left out.")
        if att.pe_kind == "dwc":
            add(-_count(att.rpe_table), "the depth-wise position encoding (dwc_pe, a 3x3 conv with bias) was "
                                        "left out.")
            add(-att.channel, "the position encoding's conv has a bias too.")
            add(att.channel * att.channel * 9 - att.channel * 9,
                "the position encoding is depth-wise: one 3x3 kernel per channel, not C x C.")
        proj = _count(att.proj_q)
        add(-proj, "DAttention has four 1x1 projections (q, k, v and the output), not three.")
        add(-4 * att.channel, "the four projections have biases.")
        add(-2 * att.n_group_channels, "the offset network's LayerNorm has 2 parameters per channel.")
        add(att.n_group_channels * 9 * (att.n_group_channels - 1),
            "the offset network's first conv is depth-wise: one 3x3 kernel per channel.")
        add(2, "the offset network's last 1x1 conv has no bias.")
    return found


def _yolo_convs(module: nn.Module) -> list[nn.Conv2d]:
    """The nn.Conv2d inside YOLO ``Conv`` blocks (conv + BatchNorm + activation)."""
    return [m.conv for m in module.modules() if hasattr(m, "conv") and hasattr(m, "bn")
            and isinstance(m.conv, nn.Conv2d)]


def check_parameter_count(answer, module: nn.Module, *, show_solution: bool = False) -> Verdict:
    """Exercise ``parameter_count``: the number of parameters of ``module``, counted by hand (exact)."""
    key = "parameter_count"
    try:
        got = as_number(answer, "one whole number of parameters")
    except BadAnswer as err:
        return garbage(key, str(err), show_solution)
    want = _count(module)
    if got == want:
        return verdict(key, True, f"{want:,} parameters.", show_solution=show_solution)
    if not float(got).is_integer():
        return verdict(key, False, "a parameter count is a whole number.", "fraction", show_solution)
    diagnoses = mistakes_of(module).get(int(got) - want)
    if diagnoses:
        text = diagnoses[0] if len(diagnoses) == 1 else f"{len(diagnoses)} mistakes give this count: " + " ".join(
            f"({i}) {d}" for i, d in enumerate(diagnoses, 1))
        return verdict(key, False, text, "counting", show_solution)
    side = "many" if got > want else "few"
    parts = ", ".join(name for name, _ in module.named_children())
    return verdict(key, False, f"{int(got):,} is too {side}. Count each part on its own ({parts}) and compare.",
                   "other", show_solution)
