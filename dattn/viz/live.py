"""Widgets drawn in the browser: the attention explorer, the reference grid and the offsets, each answering the
pointer at once, in JupyterLab and in the offline HTML book alike.

Python computes everything once (``live_data``, ``live_panels``) and sends it as compact arrays; the browser
draws every query, head, group, stride and setting from them (``static/live.js``) and never calls the kernel
to redraw. The widgets are thin shells: ``update(**changes)`` moves the view and returns the matplotlib
Figure of the same state, which is also the PNG that static viewers show (nbmake, GitHub, the README).

Why anywidget: a widget is one ES module (``render({model, el})``) plus synced traits, with no build step
and no JupyterLab extension of our own; it is small (psygnal is its one dependency besides ipywidgets) and
kept up to date for JupyterLab 4, Notebook 7, VS Code and Colab. The same module, given a stand-in for the
model, mounts in the book without a kernel (``live_html`` and ``book_script``). ipycanvas draws through
the kernel (every pointer move a round trip, nothing without a kernel) and ipyevents only forwards events
to the kernel, so neither can make a page that answers with no kernel behind it.
"""

from __future__ import annotations

import base64
import html
import io
import json
from collections.abc import Callable, Sequence
from pathlib import Path

import anywidget
import numpy as np
import torch
import traitlets
from matplotlib.figure import Figure

from ..attention import DAttention
from .features import build_model, features_from_image
from .images import load_image
from .live_data import ExplorerData, explorer_data
from .live_panels import frame_key, offsets_data, offsets_positions, reference_grid_data
from .mapping import map_to_image

STATIC = Path(__file__).with_name("static")
LIVE_MIME = "application/vnd.dattn.live+json"  # the payload in a cell's output, for the book
DEFAULT_TRAINED = "deformable"  # the shipped model that notebooks 0 and 4 explore (dattn.train.load_shipped)


def live_js() -> str:
    """The browser side of every live widget (one ES module)."""
    return (STATIC / "live.js").read_text(encoding="utf-8")


class LiveWidget(anywidget.AnyWidget):
    """A widget drawn by ``static/live.js`` from ``data``; ``selection`` is what it shows, kept in step both ways."""

    _esm = STATIC / "live.js"
    data = traitlets.Dict().tag(sync=True)
    selection = traitlets.Dict().tag(sync=True)

    def figure(self) -> Figure:  # pragma: no cover - every subclass draws its own
        raise NotImplementedError

    def checked(self, selection: dict) -> dict:  # pragma: no cover
        raise NotImplementedError

    def update(self, **changes) -> Figure:
        """Show another state (what a click in the browser does); returns its matplotlib Figure."""
        self.selection = self.checked({**self.selection, **changes})
        return self.figure()

    def png(self) -> bytes:
        """The matplotlib picture of the current state, as PNG bytes."""
        buf = io.BytesIO()
        self.figure().savefig(buf, format="png", dpi=72)
        return buf.getvalue()

    def _repr_mimebundle_(self, **kwargs):
        """The live view, with a PNG of the same state for static viewers and the payload for the book."""
        data, metadata = super()._repr_mimebundle_(**kwargs)
        data = dict(data)
        data["image/png"] = base64.b64encode(self.png()).decode("ascii")
        data[LIVE_MIME] = {"data": self.data, "selection": self.selection}
        name = self.data.get("title") or self.data.get("label")
        data["text/plain"] = f"{type(self).__name__}({name}, {self.selection})"
        return data, metadata


def _whole(name: str, value, n: int) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or not 0 <= value < n:
        raise ValueError(f"{name} must be a whole number in 0..{n - 1}, got {value!r}")
    return int(value)


class LiveExplorer(LiveWidget):
    """One query's attention over every group's sampled keys, for every query, head, input and option.

    ``selection``: ``input`` and ``option`` (indices), ``query`` [y, x] (map pixels), ``head``, ``key`` (the
    highlighted key index, or None for the heaviest). ``update`` also takes ``group`` (its first head) and the
    option by its name, e.g. ``update(stride=4)``.
    """

    def __init__(self, explorer: ExplorerData, selection: dict | None = None) -> None:
        self.explorer = explorer
        e = explorer
        first = dict(input=0, option=0, query=[e.H // 2, e.W // 2], head=0, key=None)
        sel = self.checked({**first, **(selection or {})})
        super().__init__(data=e.payload(sel), selection=sel)

    def checked(self, selection: dict) -> dict:
        e, s = self.explorer, dict(selection)
        if e.option_name and e.option_name in s:  # the option by its name: update(stride=4)
            value = str(s.pop(e.option_name))
            if value not in e.options:
                raise ValueError(f"{e.option_name} must be one of {e.options}, got {value}")
            s["option"] = e.options.index(value)
        per_group = e.n_heads // e.n_groups
        if "group" in s:
            group = _whole("group", s.pop("group"), e.n_groups)
            if e.group_of_head(_whole("head", s.get("head", 0), e.n_heads)) != group:
                s["head"] = group * per_group
        unknown = set(s) - {"input", "option", "query", "head", "key"}
        if unknown:
            raise ValueError(f"unknown explorer settings {sorted(unknown)}; known: input, option, query, head, group, "
                             f"key{', ' + e.option_name if e.option_name else ''}")
        q = s["query"]
        if not isinstance(q, (tuple, list)) or len(q) != 2:
            raise ValueError(f"query must be two pixel indices (y, x), got {q!r}")
        out = dict(input=_whole("input", s["input"], len(e.images)),
                   option=_whole("option", s["option"], len(e.options)),
                   query=[_whole("query y", q[0], e.H), _whole("query x", q[1], e.W)],
                   head=_whole("head", s["head"], e.n_heads))
        view = e.views[out["input"]][out["option"]]
        out["key"] = None if s.get("key") is None else _whole("key", s["key"], view.Hk * view.Wk)
        return out

    @property
    def query(self) -> tuple[int, int]:
        return tuple(self.selection["query"])

    def weights(self) -> np.ndarray:
        """(Ns,) weights of the selected query and head over its group's keys."""
        s = self.selection
        return self.explorer.weights(s["input"], s["option"], s["head"], tuple(s["query"]))

    def figure(self) -> Figure:
        from .live_plots import live_explorer_figure

        return live_explorer_figure(self.explorer, self.selection)


class LivePanel(LiveWidget):
    """Points and arrows on an image (``live_panels``), one frame per combination of its controls' values;
    ``draw(**selection)`` makes the matplotlib Figure of a state."""

    def __init__(self, payload: dict, draw: Callable[..., Figure]) -> None:
        self._draw = draw
        self._controls = {c["name"]: c["values"] for c in payload["controls"]}
        super().__init__(data=payload, selection=self.checked(payload["initial"]))

    def checked(self, selection: dict) -> dict:
        unknown = set(selection) - set(self._controls)
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; known: {sorted(self._controls)}")
        for name, values in self._controls.items():
            v = selection.get(name)
            if isinstance(v, bool) or v not in values:
                raise ValueError(f"{name} must be one of {values}, got {v!r}")
        return {name: selection[name] for name in self._controls}

    def figure(self) -> Figure:
        return self._draw(**self.selection)


# ----------------------------------------------------------------------------------------------------------
# The explorers
# ----------------------------------------------------------------------------------------------------------
def explorer_for(
    models: DAttention | Sequence[DAttention], x: torch.Tensor, images: Sequence,
    to_image_px: Callable[[torch.Tensor], torch.Tensor], input_names: Sequence[str], options: Sequence[str] = ("",),
    option_name: str = "", title: str = "", label: str = "", masks: Sequence | None = None, note: str = "",
    input_label: str = "input", selection: dict | None = None,
) -> LiveExplorer:
    """The explorer of any DAttention on its own inputs ``x`` (B, C, H, W), one model per option (e.g. the
    same module at several strides); ``images`` are what the B inputs show and ``to_image_px`` maps (..., 2)
    map pixels (y, x) to their image pixels."""
    models = [models] if isinstance(models, DAttention) else list(models)
    with torch.no_grad():
        traces = [m.eval().trace(x) for m in models]
    data = explorer_data(traces, images, to_image_px, input_names, options, option_name, title, label, masks, note,
                         input_label)
    return LiveExplorer(data, selection)


def trained_explorer(name: str = DEFAULT_TRAINED, n_scenes: int = 8, block: int = 0) -> LiveExplorer:
    """The explorer of a shipped trained scene model (``dattn.train.load_shipped(name)``) on the first
    ``n_scenes`` of its held-out scenes, which it never saw in training: its learned offsets on its own inputs."""
    from ..train import heldout, load_shipped

    model = load_shipped(name)
    if not 1 <= n_scenes <= 64:
        raise ValueError(f"n_scenes must be in 1..64, got {n_scenes!r}")
    scenes = heldout(model.cfg)
    images = scenes.images[:n_scenes]  # (n, 3, S, S)
    x = model.attention_input(images, block)  # (n, C, Hf, Wf)
    attn = model.blocks[block]
    cfg = model.cfg
    kind = {"deformable": "learned offsets", "fixed": "offsets off: a fixed grid", "dense": "a key at every pixel"}
    return explorer_for(
        attn, x, list(images), model.to_image_px, [f"held-out scene {i}" for i in range(n_scenes)],
        title=f"Trained scene model '{name}': one query's attention over the keys that every query shares",
        label=f"Trained DAttention ({kind.get(cfg.variant, cfg.variant)}; {attn.n_heads} heads in {attn.n_groups} "
              f"groups), block {block} of load_shipped({name!r}), on held-out scenes it never saw in training. "
              f"Objects are outlined.",
        masks=[m for m in scenes.masks[:n_scenes]], input_label="scene",
    )


def untrained_explorer(
    image: str = "grace_hopper", size: int = 20, channels: int = 32, n_heads: int = 8, n_groups: int = 4,
    strides: Sequence[int] = (2, 4), offset_range_factor: float = 2.0, seed: int = 0,
) -> LiveExplorer:
    """The explorer of an untrained DAttention (``build_model``, random weights) on an image's ``size x size``
    feature map (``features_from_image``), rebuilt at every stride offered (same seed, so the same weights)."""
    img = load_image(image) if isinstance(image, str) else np.asarray(image)
    x = features_from_image(img, channels, size, seed)  # (1, C, S, S)
    models = [build_model(channels, size, n_heads, n_groups, s, offset_range_factor, seed) for s in strides]
    img_hw = img.shape[:2]
    return explorer_for(
        models, x, [img], lambda p: map_to_image(p, (size, size), img_hw),
        [image if isinstance(image, str) else "image"], [str(s) for s in strides], "stride",
        title="Untrained DAttention: one query's attention over the keys that every query shares",
        label=f"Untrained: random weights (seed {seed}), {channels} channels, {n_heads} heads in {n_groups} groups, "
              f"offset_range_factor {offset_range_factor:g}, on a {size}x{size} map made from the image's colours",
        selection=dict(option=list(strides).index(2) if 2 in strides else 0),
    )


# ----------------------------------------------------------------------------------------------------------
# The panels of notebooks 1 and 2
# ----------------------------------------------------------------------------------------------------------
def reference_grid_widget(image, size: int = 20) -> LivePanel:
    """Stride and convention buttons over the reference points of an image's size x size map
    (``reference_grid_data``); its Figure is ``plot_reference_grid``'s."""
    from .reference_plots import plot_reference_grid

    def draw(stride: int, convention: str) -> Figure:
        fig = Figure(figsize=(6.0, 5.0), dpi=80, layout="constrained")
        plot_reference_grid(image, stride=stride, convention=convention, size=size, ax=fig.add_subplot())
        return fig

    return LivePanel(reference_grid_data(image, size), draw)


def offsets_widget(image, size: int = 20, channels: int = 32, n_groups: int = 4, seed: int = 0) -> LivePanel:
    """Stride, offset_range_factor and group controls over an untrained DAttention's offsets (``offsets_data``:
    every setting computed once); its Figure is ``plot_offsets``'s for the same state."""
    from .offset_plots import plot_offsets

    payload = offsets_data(image, size, channels, n_groups, seed)
    feats = features_from_image(image, channels, size, seed)

    def draw(stride: int, offset_range_factor: float, group: int) -> Figure:
        model = build_model(channels, size, n_groups=n_groups, stride=stride, seed=seed)
        model.offset_range_factor = offset_range_factor
        with torch.no_grad():
            trace = model.trace(feats)
        fig = Figure(figsize=(6.0, 5.0), dpi=80, layout="constrained")
        plot_offsets(image, trace, group=group, ax=fig.add_subplot(),
                     label=f"untrained, stride {stride}, factor {offset_range_factor:g}")
        return fig

    return LivePanel(payload, draw)


# ----------------------------------------------------------------------------------------------------------
# The offline book
# ----------------------------------------------------------------------------------------------------------
def _json_for_html(obj) -> str:
    """JSON that can sit inside a <script> element: no "</" or "<!--" can end or open anything."""
    return json.dumps(obj, separators=(",", ":")).replace("<", "\\u003c").replace(">", "\\u003e")


def live_html(bundle: dict, png_b64: str | None, element_id: str) -> str:
    """A book page's live widget: its data in a JSON script element and a host that shows the PNG until
    ``book_script`` mounts the live view in its place."""
    fallback = f'<img alt="the widget\'s picture" src="data:image/png;base64,{png_b64}">' if png_b64 else ""
    return (f'<div class="dattn-live-host" data-payload="{html.escape(element_id)}">{fallback}</div>\n'
            f'<script type="application/json" id="{html.escape(element_id)}">{_json_for_html(bundle)}</script>')


def book_script() -> str:
    """One module script for a book page: ``static/live.js`` itself, then every live host mounted."""
    js = live_js().replace("</script", "<\\/script")
    mount = 'for (const el of document.querySelectorAll(".dattn-live-host[data-payload]")) mountStatic(el);'
    return f'<script type="module">\n{js}\n{mount}\n</script>'


__all__ = [
    "DEFAULT_TRAINED", "LIVE_MIME", "LiveExplorer", "LivePanel", "LiveWidget", "book_script", "explorer_for",
    "frame_key", "live_html", "live_js", "offsets_positions", "offsets_widget", "reference_grid_widget",
    "trained_explorer", "untrained_explorer",
]
