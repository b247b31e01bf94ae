"""Build YOLOv5 models from yaml files, following the rules of YOLOv5's ``parse_model`` (v7.0).

A yaml lists layers as ``[from, number, module, args]``. The parser

* scales ``number`` by ``depth_multiple``: ``max(round(n * gd), 1)`` when n > 1;
* for conv-like modules takes c1 from the ``from`` layer, scales the output width c2 by ``width_multiple``
  and rounds it up to a multiple of 8 (except when c2 equals the Detect output size), and prepends (c1, c2)
  to the arguments; C3-like modules (C3, C3_DAttention) get the repeat count inserted as their 3rd argument
  and are built once;
* gives Concat the sum of its inputs' channels, and Detect/Segment the list of their inputs' channels;
* keeps in ``save`` every layer index that a later layer reads through ``from``.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn
from torch._subclasses.fake_tensor import FakeTensorMode

from .common import C3, SPPF, Bottleneck, Concat, Conv
from .fused import Bottleneck_DAttention, C3_DAttention
from .heads import Detect, Segment

#: depth_multiple, width_multiple of YOLOv5's n/s/m/l/x models
SCALES: dict[str, tuple[float, float]] = {
    "n": (0.33, 0.25),
    "s": (0.33, 0.50),
    "m": (0.67, 0.75),
    "l": (1.00, 1.00),
    "x": (1.33, 1.25),
}

#: names a yaml file may use for its modules
MODULES: dict[str, type[nn.Module]] = {
    "Conv": Conv,
    "Bottleneck": Bottleneck,
    "C3": C3,
    "SPPF": SPPF,
    "Concat": Concat,
    "C3_DAttention": C3_DAttention,
    "Bottleneck_DAttention": Bottleneck_DAttention,
    "Detect": Detect,
    "Segment": Segment,
    "nn.Upsample": nn.Upsample,
    "nn.BatchNorm2d": nn.BatchNorm2d,
    "nn.Identity": nn.Identity,
}
CONV_LIKE = {Conv, Bottleneck, SPPF, C3, C3_DAttention, Bottleneck_DAttention, nn.ConvTranspose2d}
REPEAT_IN_ARGS = {C3, C3_DAttention}  # modules that take the repeat count as their 3rd argument
HEADS = (Detect, Segment)


def make_divisible(x: float, divisor: int = 8) -> int:
    """Smallest multiple of divisor that is >= x."""
    return int(math.ceil(x / divisor) * divisor)


def shipped_configs() -> list[str]:
    """Names of the yaml files that ship with the package."""
    return sorted(
        p.name for p in resources.files(__package__).joinpath("configs").iterdir() if p.name.endswith(".yaml")
    )


def load_cfg(cfg: str | Path | Mapping[str, Any]) -> dict[str, Any]:
    """A config dict from a dict, a path to a yaml file, or the bare name of a shipped yaml ('yolov5l.yaml').

    A bare name (no folder) is read from the current folder when such a file exists there, else from the shipped
    configs; a path with a folder must exist. The dict is a deep copy, checked by :func:`check_cfg`, and
    carries ``yaml_file`` (the file name, used in the summary line). Raises FileNotFoundError or ValueError.
    """
    if isinstance(cfg, Mapping):
        d = copy.deepcopy(dict(cfg))
        d.setdefault("yaml_file", "model.yaml")
        check_cfg(d)
        return d
    path = Path(cfg)
    if path.is_file():
        text = path.read_text(encoding="utf-8")
    else:
        shipped = resources.files(__package__).joinpath("configs", path.name)
        if path.name != str(cfg) or not shipped.is_file():  # a path with a folder, or an unknown name
            raise FileNotFoundError(
                f"no yaml file {str(cfg)!r}; a bare name reads a shipped config, one of {shipped_configs()}"
            )
        text = shipped.read_text(encoding="utf-8")
    try:
        d = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ValueError(f"{path.name}: not valid yaml ({str(err).splitlines()[0]})") from None
    if not isinstance(d, dict):
        got = "an empty file" if d is None else f"a {type(d).__name__}"
        raise ValueError(f"{path.name}: expected a mapping with nc, anchors, backbone and head, got {got}")
    d["yaml_file"] = path.name
    check_cfg(d)
    return d


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def check_cfg(d: Mapping[str, Any]) -> None:
    """ValueError naming the key (and the layer) of the first thing in a config that parse_model cannot use."""
    name = d.get("yaml_file", "model.yaml")
    for key in ("nc", "anchors", "backbone", "head"):
        if key not in d:
            raise ValueError(f"{name}: missing key {key!r} (a YOLOv5 yaml has nc, anchors, backbone and head)")
    nc = d["nc"]
    if not _is_int(nc) or nc < 1:
        raise ValueError(f"{name}: 'nc' must be an int >= 1 (the number of classes), got {nc!r}")
    for key in ("depth_multiple", "width_multiple"):
        v = d.get(key, 1.0)
        if not _is_number(v) or v <= 0:
            raise ValueError(f"{name}: {key!r} must be a number > 0, got {v!r}")
    anchors = d["anchors"]
    per_level = isinstance(anchors, list) and anchors and all(
        isinstance(a, list) and a and len(a) % 2 == 0 and all(_is_number(x) and x > 0 for x in a) for a in anchors
    )
    if not per_level and not (_is_int(anchors) and anchors >= 1):
        raise ValueError(
            f"{name}: 'anchors' must be a list of [w, h, w, h, ...] pixel sizes per level or an int >= 1, "
            f"got {anchors!r}"
        )
    for section in ("backbone", "head"):
        if not isinstance(d[section], list) or not d[section]:
            raise ValueError(f"{name}: {section!r} must be a non-empty list of layers, got {d[section]!r}")
    for i, layer in enumerate(d["backbone"] + d["head"]):
        where = f"{name}: layer {i}"
        if not isinstance(layer, list) or len(layer) != 4:
            raise ValueError(f"{where}: expected [from, number, module, args], got {layer!r}")
        f, n, module, args = layer
        froms = f if isinstance(f, list) else [f]
        if not froms or not all(_is_int(j) for j in froms):
            raise ValueError(f"{where}: 'from' must be an int or a list of ints, got {f!r}")
        for j in froms:
            ok = j == -1 if i == 0 else -i <= j < i  # layer 0 reads the input (-1); others earlier layers
            if not ok:
                valid = "-1 (the input)" if i == 0 else f"-{i}..{i - 1}"
                raise ValueError(f"{where}: 'from' index {j} is out of range ({valid})")
        if not _is_int(n) or n < 1:
            raise ValueError(f"{where}: 'number' (repeats) must be an int >= 1, got {n!r}")
        if module not in MODULES:
            raise ValueError(f"{where}: unknown module {module!r}; known modules are {sorted(MODULES)}")
        if not isinstance(args, list):
            raise ValueError(f"{where}: 'args' must be a list, got {args!r}")


def scale_cfg(cfg: str | Path | Mapping[str, Any], scale: str | None) -> dict[str, Any]:
    """The config with YOLOv5's n/s/m/l/x depth and width multiples (unchanged when scale is None)."""
    d = load_cfg(cfg)
    if scale is None:
        return d
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    d["depth_multiple"], d["width_multiple"] = SCALES[scale]
    d["scale"] = scale
    return d


def _resolve_arg(a: Any, d: Mapping[str, Any]) -> Any:
    """yaml names in module arguments: 'nc', 'anchors' (and any other top-level key) and 'None'."""
    if isinstance(a, str):
        if a == "None":
            return None
        if a in d and a not in ("backbone", "head"):
            return copy.deepcopy(d[a])
    return a


def parse_model(d: Mapping[str, Any], ch: int = 3) -> tuple[nn.Sequential, list[int]]:
    """Layers and save list from a config dict (see the module docstring for the rules).

    Every layer gets ``i`` (index), ``f`` (from), ``n`` (repeats after depth scaling), ``type`` (qualified
    class name), ``np`` (parameters) and ``args`` (the arguments it was built with), for the summary table.
    """
    check_cfg(d)
    file = d.get("yaml_file", "model.yaml")
    anchors, nc = d["anchors"], d["nc"]
    gd, gw = d.get("depth_multiple", 1.0), d.get("width_multiple", 1.0)
    na = len(anchors[0]) // 2 if isinstance(anchors, list) else anchors  # anchors per level
    no = na * (nc + 5)  # Detect output channels
    layers: list[nn.Module] = []
    save: list[int] = []
    chs = [ch]  # output channels of every layer so far (the input first, dropped after layer 0)
    for i, (f, n, name, args) in enumerate(d["backbone"] + d["head"]):
        m = MODULES[name]
        args = [_resolve_arg(a, d) for a in args]
        n = n_ = max(round(n * gd), 1) if n > 1 else n  # depth gain
        if m in CONV_LIKE:
            if not args or not _is_int(args[0]) or args[0] < 1:
                got = args[0] if args else "nothing"
                raise ValueError(
                    f"{file}: layer {i}: {name}'s first argument (output channels) must be an int >= 1, got {got!r}"
                )
            c1, c2 = chs[f], args[0]
            if c2 != no:  # not the output
                c2 = make_divisible(c2 * gw, 8)
            args = [c1, c2, *args[1:]]
            if m in REPEAT_IN_ARGS:
                args.insert(2, n)
                n = 1
        elif m is nn.BatchNorm2d:
            args = [chs[f]]
            c2 = chs[f]
        elif m is Concat:
            c2 = sum(chs[x] for x in f)
        elif m in HEADS:
            args.append([chs[x] for x in f])
            if isinstance(args[1], int):  # a number of anchors instead of a list
                args[1] = [list(range(args[1] * 2))] * len(f)
            if m is Segment:
                args[3] = make_divisible(args[3] * gw, 8)
        else:
            c2 = chs[f]
        try:
            m_ = nn.Sequential(*(m(*args) for _ in range(n))) if n > 1 else m(*args)
        except (TypeError, ValueError, IndexError, KeyError, ZeroDivisionError, RuntimeError) as err:
            raise ValueError(f"{file}: layer {i}: {name} cannot be built from args {args}: {err}") from None
        m_.i, m_.f, m_.n, m_.args = i, f, n_, args
        m_.type = f"{m.__module__}.{m.__qualname__}"
        m_.np = sum(p.numel() for p in m_.parameters())
        save.extend(x % i for x in ([f] if isinstance(f, int) else f) if x != -1)
        layers.append(m_)
        if i == 0:
            chs = []
        chs.append(c2)
    return nn.Sequential(*layers), sorted(save)


def initialize_weights(model: nn.Module) -> None:
    """YOLOv5's BatchNorm settings (eps 1e-3, momentum 0.03) and in-place activations."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eps, m.momentum = 1e-3, 0.03
        elif isinstance(m, (nn.Hardswish, nn.LeakyReLU, nn.ReLU, nn.ReLU6, nn.SiLU)):
            m.inplace = True


class DetectionModel(nn.Module):
    """A YOLOv5 model built from a yaml (a shipped name, a path or a dict), optionally at a scale n/s/m/l/x.

    At build, a dry forward of a ``probe`` x ``probe`` image (256, as YOLOv5) gives the head's strides, and
    the anchors are divided by them. A model whose attention only accepts one map size (``fixed_pe``) needs
    the probe size it was built for.
    """

    def __init__(
        self,
        cfg: str | Path | Mapping[str, Any] = "yolov5l.yaml",
        ch: int = 3,
        nc: int | None = None,
        anchors: Any = None,
        scale: str | None = None,
        probe: int = 256,
    ) -> None:
        super().__init__()
        self.yaml = scale_cfg(cfg, scale)
        self.yaml_file = self.yaml["yaml_file"]
        self.yaml["ch"] = ch = self.yaml.get("ch", ch)
        if nc is not None:
            self.yaml["nc"] = nc
        if anchors is not None:
            self.yaml["anchors"] = anchors
        self.model, self.save = parse_model(copy.deepcopy(self.yaml), ch=ch)
        self.names = [str(i) for i in range(self.yaml["nc"])]
        head = self.model[-1]
        if isinstance(head, HEADS):
            head.inplace = self.yaml.get("inplace", True)
            self._set_strides(head, ch, probe)
            self.stride = head.stride
            head.initialize_biases()
        else:
            self.stride = torch.tensor([32.0])
        initialize_weights(self)

    def _set_strides(self, head: Detect, ch: int, probe: int) -> None:
        """Strides from a dry forward at probe x probe; anchors from pixels to grid units."""
        if not _is_int(probe) or probe < 1:
            raise ValueError(f"probe must be a positive int (an image side in pixels), got {probe!r}")
        try:  # shapes are all it needs: fake tensors make the probe free and leave BatchNorm statistics alone
            with torch.no_grad(), FakeTensorMode(allow_non_fake_inputs=True):
                out = self.forward(torch.zeros(1, ch, probe, probe))
        except (ValueError, RuntimeError) as err:
            first = str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__
            raise ValueError(
                f"the {probe}x{probe} stride probe failed ({first}); the probe must be a multiple of the largest "
                "stride, and a model whose attention takes one map size needs the matching probe=<size>"
            ) from err
        maps = out[0] if isinstance(head, Segment) else out  # train mode: raw maps
        sides = [x.shape[-2] for x in maps]
        if any(probe % n for n in sides):
            raise ValueError(
                f"a {probe}x{probe} stride probe gives maps of {sides} pixels, which do not divide it (strides "
                f"{[round(probe / n, 2) for n in sides]}): the probe must be a multiple of the largest stride"
            )
        head.stride = torch.tensor([probe / n for n in sides])  # (nl,)
        a = head.anchors.prod(-1).mean(-1).view(-1)  # mean anchor area per level
        da, ds = a[-1] - a[0], head.stride[-1] - head.stride[0]
        if da and da.sign() != ds.sign():  # anchors listed large to small: flip them
            head.anchors[:] = head.anchors.flip(0)
        head.anchors /= head.stride.view(-1, 1, 1)

    def forward(self, x: torch.Tensor):
        """(B, ch, H, W), H and W multiples of the largest stride -> the head's output."""
        y: list[torch.Tensor | None] = []
        for m in self.model:
            if m.f != -1:
                x = y[m.f] if isinstance(m.f, int) else [x if j == -1 else y[j] for j in m.f]
            x = m(x)
            y.append(x if m.i in self.save else None)
        return x


class SegmentationModel(DetectionModel):
    """DetectionModel whose yaml ends with Segment (default: the seed's segmentation yaml)."""

    def __init__(self, cfg: str | Path | Mapping[str, Any] = "yolov5_C3_DAttention_seg.yaml", **kwargs: Any) -> None:
        super().__init__(cfg, **kwargs)


def build_model(cfg: str | Path | Mapping[str, Any], scale: str | None = None, **kwargs: Any) -> DetectionModel:
    """DetectionModel or SegmentationModel, whichever the yaml's last layer asks for."""
    d = load_cfg(cfg)
    last = (d["backbone"] + d["head"])[-1][2]
    cls = SegmentationModel if last == "Segment" else DetectionModel
    return cls(d, scale=scale, **kwargs)
