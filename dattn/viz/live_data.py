"""What the explorer draws in the browser, as plain numbers: computed once in Python, then sent as compact arrays.

For every input (an image, a held-out scene) and every option (e.g. a stride) of one DAttention model, an
``ExplorerView`` holds the reference points, each group's sampled keys, in image pixels, and the attention
weights of every query of every head over its group's keys. The keys do not depend on the query; only the
weights do: that is why one (g, Ns, 2) array of keys per view is enough for all H x W queries.

``ExplorerData.payload()`` packs the numbers for the browser (JSON with base64 arrays: positions as
float32, weights as uint16 steps of 1/65535, images as PNG data URLs); ``unpack`` reverses the packing, so
tests can check what the browser receives. ``query_dependence`` measures how much the query matters: the
share of queries whose heaviest key is the most common one, which the widget prints beside the picture.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import matplotlib
import numpy as np
import torch
from PIL import Image

from ..attention import DAttentionTrace
from . import style
from .mapping import outside_map
from .trained_plots import GROUP_COLORS, GROUP_MARKERS

WEIGHT_STEPS = 65535  # weights travel as round(w * 65535) in a uint16: 1.5e-5 apart, exact to 4 decimals


# ----------------------------------------------------------------------------------------------------------
# Packing
# ----------------------------------------------------------------------------------------------------------
def pack(a: np.ndarray | torch.Tensor, dtype: str) -> str:
    """An array as base64 of its little-endian ``dtype`` bytes ("float32", "uint16" or "uint8")."""
    a = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    return base64.b64encode(np.ascontiguousarray(a, dtype=np.dtype(dtype).newbyteorder("<")).tobytes()).decode()


def unpack(text: str, dtype: str, shape: Sequence[int] | None = None) -> np.ndarray:
    """Inverse of ``pack``: base64 text -> a numpy array of ``dtype`` (reshaped when ``shape`` is given)."""
    a = np.frombuffer(base64.b64decode(text), dtype=np.dtype(dtype).newbyteorder("<")).astype(dtype)
    return a if shape is None else a.reshape(shape)


def pack_weights(w: np.ndarray | torch.Tensor) -> str:
    """Attention weights in [0, 1] as uint16 steps of 1/65535 (absolute error <= 7.7e-6)."""
    w = w.detach().cpu().numpy() if isinstance(w, torch.Tensor) else np.asarray(w)
    if w.size and (not np.isfinite(w).all() or w.min() < 0 or w.max() > 1 + 1e-6):
        raise ValueError(f"attention weights must lie in [0, 1], got values in [{w.min()}, {w.max()}]")
    return pack(np.rint(np.clip(w, 0, 1) * WEIGHT_STEPS), "uint16")


def unpack_weights(text: str, shape: Sequence[int]) -> np.ndarray:
    """Inverse of ``pack_weights``: float32 weights of ``shape``."""
    return (unpack(text, "uint16", shape).astype(np.float32) / WEIGHT_STEPS).astype(np.float32)


def image_url(image, max_side: int = 360) -> str:
    """An (H, W, 3) image (floats in [0, 1], or a (3, H, W) tensor) as a PNG data URL, at most ``max_side``
    pixels on its longer side (the browser stretches it over the image's extent)."""
    a = np.clip(style.as_hwc(image), 0, 1)
    pil = Image.fromarray(np.rint(a * 255).astype(np.uint8), mode="L" if a.ndim == 2 else "RGB")
    if max(pil.size) > max_side:
        k = max_side / max(pil.size)
        pil = pil.resize((max(1, round(pil.size[0] * k)), max(1, round(pil.size[1] * k))), Image.LANCZOS)
    buf = io.BytesIO()
    pil.save(buf, format="png", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def palette() -> dict:
    """The course's colours (``style``) for the browser: one per concept, one colour and marker per group,
    and the attention colour map as 64 hex colours from 0 to 1."""
    cmap = matplotlib.colormaps[style.ATTENTION_CMAP]
    return dict(query=style.QUERY_COLOR, reference=style.REFERENCE_COLOR, sampling=style.SAMPLING_COLOR,
                offset=style.OFFSET_COLOR, grid=style.GRID_COLOR, outside=style.OUTSIDE_COLOR,
                edge=style.EDGE_COLOR, groups=list(GROUP_COLORS), markers=list(GROUP_MARKERS),
                cmap=[matplotlib.colors.to_hex(cmap(i / 63)) for i in range(64)])


# ----------------------------------------------------------------------------------------------------------
# How much the query matters
# ----------------------------------------------------------------------------------------------------------
def query_dependence(attn: np.ndarray | torch.Tensor) -> list[dict]:
    """For each head of ``attn`` (heads, HW, Ns): the key most queries weigh most (``key``), the share of
    queries for which it is their heaviest key (``share``), and the median over queries of their largest
    weight (``median_max``). A share near 1 with a median near 1 means the query changes little."""
    a = attn.detach().cpu().numpy() if isinstance(attn, torch.Tensor) else np.asarray(attn)
    out = []
    for w in a:  # (HW, Ns)
        heaviest = w.argmax(-1)  # (HW,)
        counts = np.bincount(heaviest, minlength=w.shape[-1])
        key = int(counts.argmax())
        out.append(dict(key=key, share=float(counts[key] / len(heaviest)), median_max=float(np.median(w.max(-1)))))
    return out


# ----------------------------------------------------------------------------------------------------------
# The numbers of one explorer
# ----------------------------------------------------------------------------------------------------------
@dataclass
class ExplorerView:
    """One input at one option: keys shared by every query, and every query's weights over them."""

    reference: np.ndarray  # (Ns, 2) image pixels (y, x)
    positions: np.ndarray  # (g, Ns, 2) image pixels (y, x): the sampled keys of each group
    positions_map: np.ndarray  # (g, Ns, 2) the same keys in map pixels
    outside: np.ndarray  # (g, Ns) bool: the key lies off the map's cells; its read is partly zero padding
    attn: np.ndarray  # (heads, HW, Ns) float32
    Hk: int
    Wk: int
    dependence: list[dict] = field(default_factory=list)  # query_dependence(attn), one dict per head


@dataclass
class ExplorerData:
    """Everything the explorer shows, for every input and option of one model; ``views[input][option]``."""

    title: str
    label: str  # what the model is, e.g. "untrained DAttention (random weights)"
    H: int
    W: int
    n_heads: int
    n_groups: int
    queries: np.ndarray  # (HW, 2) image pixels of every query (map pixel centres), row-major
    map_edge: tuple[float, float, float, float]  # (y0, x0, y1, x1) image pixels of the map's cells
    images: list[np.ndarray]  # (h, w, 3) each
    input_names: list[str]
    option_name: str
    options: list[str]
    views: list[list[ExplorerView]]
    masks: list[np.ndarray | None] = field(default_factory=list)  # (h, w) object masks to outline, if any
    note: str = ""  # a sentence the widget prints under the title
    input_label: str = "input"  # what one input is called on its buttons, e.g. "scene"

    @property
    def image_hw(self) -> tuple[int, int]:
        return tuple(self.images[0].shape[:2])

    def group_of_head(self, head: int) -> int:
        return head // (self.n_heads // self.n_groups)

    def weights(self, input: int, option: int, head: int, query: tuple[int, int]) -> np.ndarray:
        """(Ns,) weights of one query (y, x) of one head over its group's keys."""
        return self.views[input][option].attn[head, query[0] * self.W + query[1]]

    def bounds(self) -> tuple[float, float, float, float]:
        """(y0, x0, y1, x1): the image, the map's cells and every key and reference point of every view."""
        h, w = self.image_hw
        pts = [np.array([[-0.5, -0.5], [h - 0.5, w - 0.5]]), np.array(self.map_edge).reshape(2, 2)]
        pts += [p for row in self.views for v in row for p in (v.reference, v.positions.reshape(-1, 2))]
        p = np.concatenate(pts)
        lo, hi = p.min(0), p.max(0)
        pad = 0.03 * max(h, w) if (lo < [-0.5, -0.5]).any() or (hi > [h - 0.5, w - 0.5]).any() else 0.0
        return (float(lo[0] - pad), float(lo[1] - pad), float(hi[0] + pad), float(hi[1] + pad))

    def payload(self, initial: dict | None = None) -> dict:
        """The JSON the browser draws from (``dattn/viz/static/live.js``), with ``initial`` as the first state."""
        views = [[dict(Hk=v.Hk, Wk=v.Wk, reference=pack(v.reference, "float32"),
                       positions=pack(v.positions, "float32"), positions_map=pack(v.positions_map, "float32"),
                       outside=[np.flatnonzero(o).tolist() for o in v.outside],
                       attn=pack_weights(v.attn), dependence=v.dependence) for v in row] for row in self.views]
        return dict(
            kind="explorer", version=1, title=self.title, label=self.label, note=self.note,
            H=self.H, W=self.W, n_heads=self.n_heads, n_groups=self.n_groups, image_hw=list(self.image_hw),
            queries=pack(self.queries, "float32"), map_edge=list(self.map_edge), bounds=list(self.bounds()),
            inputs=[dict(name=n, image=image_url(img), mask=None if m is None else pack(m, "uint8"))
                    for n, img, m in zip(self.input_names, self.images, self._masks(), strict=True)],
            input_label=self.input_label, option_name=self.option_name, options=list(self.options), views=views,
            palette=palette(),
            initial=initial or {},
        )

    def _masks(self) -> list[np.ndarray | None]:
        return self.masks if self.masks else [None] * len(self.images)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().float().numpy()


def explorer_data(
    traces: Sequence[DAttentionTrace], images: Sequence, to_image_px: Callable[[torch.Tensor], torch.Tensor],
    input_names: Sequence[str], options: Sequence[str] = ("",), option_name: str = "", title: str = "",
    label: str = "", masks: Sequence | None = None, note: str = "", input_label: str = "input",
) -> ExplorerData:
    """The explorer's numbers from one trace per option, each of a batch with one item per input.

    ``traces[o]`` is a ``DAttentionTrace`` of the inputs (batch B = len(images)) under option ``o`` (e.g. the
    same module rebuilt at another stride); ``to_image_px`` maps (..., 2) map pixels (y, x) to image pixels;
    ``images`` are what the inputs show, (h, w, 3) arrays or (3, h, w) tensors, all the same size.
    """
    if len(traces) != len(options) or not traces:
        raise ValueError(f"expected one trace per option ({len(options)} options), got {len(traces)} traces")
    first = traces[0]
    n_in = len(images)
    if n_in < 1 or len(input_names) != n_in or (masks is not None and len(masks) != n_in):
        raise ValueError(f"expected as many input names ({len(input_names)}) and masks as images ({n_in})")
    shapes = {tuple(style.as_hwc(i).shape[:2]) for i in images}
    if len(shapes) != 1:
        raise ValueError(f"the images must all have one size, got {sorted(shapes)}")
    for o, t in zip(options, traces, strict=True):
        got = (t.attn.shape[0], t.H, t.W, t.n_heads, t.n_groups)
        want = (n_in, first.H, first.W, first.n_heads, first.n_groups)
        if got != want:
            raise ValueError(f"trace of option {o!r} has (batch, H, W, heads, groups) {got}, expected {want}")
    H, W = first.H, first.W
    grid = torch.stack(torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij"), -1).float()  # (H, W, 2)
    with torch.no_grad():
        queries = _np(to_image_px(grid)).reshape(-1, 2)
        edge = _np(to_image_px(torch.tensor([[-0.5, -0.5], [H - 0.5, W - 0.5]]))).reshape(-1).tolist()
        views = []
        for b in range(n_in):
            row = []
            for t in traces:
                pos_map = t.positions_px[b].reshape(t.n_groups, -1, 2)  # (g, Ns, 2)
                attn = _np(t.attn[b])  # (heads, HW, Ns)
                row.append(ExplorerView(
                    reference=_np(to_image_px(t.reference_px)).reshape(-1, 2), positions=_np(to_image_px(pos_map)),
                    positions_map=_np(pos_map), outside=outside_map(pos_map, (H, W)).numpy(), attn=attn,
                    Hk=t.Hk, Wk=t.Wk, dependence=query_dependence(attn)))
            views.append(row)
    return ExplorerData(
        title=title, label=label, H=H, W=W, n_heads=first.n_heads, n_groups=first.n_groups, queries=queries,
        map_edge=tuple(edge), images=[style.as_hwc(i) for i in images], input_names=list(input_names),
        option_name=option_name, options=[str(o) for o in options], views=views,
        masks=[None if m is None else np.asarray(m, dtype=np.uint8) for m in masks] if masks is not None else [],
        note=note, input_label=input_label,
    )
