"""An interactive explorer: thin ipywidgets controls over ``explorer_plots.explorer_figure``.

Every control calls ``Explorer.update(name=value)``, a plain method that tests and notebooks call directly;
it returns the (updated) Figure. Moving the query, or changing the head or group, reuses the cached trace
and redraws only what changed (blitting onto a cached background); a new image, stride or
offset_range_factor runs the model again and redraws everything.

Without a frontend (nbmake, nbconvert, a static viewer) the explorer still shows a picture: its rich
display carries a PNG beside the widget, and ``static_figure()`` returns an ordinary Figure.
"""

from __future__ import annotations

import base64
import io
import time
from dataclasses import asdict, dataclass, replace

import ipywidgets as widgets
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image

from ..attention import DAttention, DAttentionTrace
from .explorer_plots import explorer_figure, update_explorer
from .features import build_model, features_from_image, map_luminance
from .images import list_images, load_image

STRIDES = (1, 2, 4)


def _is_int(v) -> bool:
    """An int or a numpy int, not a bool."""
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _check_build(size, channels, n_heads, n_groups) -> None:
    """ValueError for explorer sizes that cannot work, before any model is built."""
    for name, value in (("size", size), ("channels", channels), ("n_heads", n_heads), ("n_groups", n_groups)):
        if not _is_int(value) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if n_heads % n_groups:
        raise ValueError(f"n_heads ({n_heads}) must be divisible by n_groups ({n_groups})")
    if channels % n_heads:
        raise ValueError(f"channels ({channels}) must be divisible by n_heads ({n_heads})")
SLOW_KEYS = ("image", "stride", "offset_range_factor")  # changing one of these runs the model again
FAST_KEYS = ("query_y", "query_x", "head", "group")  # these reuse the cached trace


@dataclass(frozen=True)
class ExplorerState:
    """What the explorer shows."""

    image: str = "grace_hopper"
    stride: int = 2
    offset_range_factor: float = 2.0
    query_y: int = 10
    query_x: int = 10
    head: int = 0
    group: int = 0


class Explorer:
    """Deformable attention of an untrained DAttention (``build_model``) over an image's ``size x size``
    feature map (``features_from_image``).

    >>> ex = Explorer()               # doctest: +SKIP
    >>> ex                            # the widget (or, without a frontend, a PNG of it)  # doctest: +SKIP
    >>> ex.update(query_y=3, head=2)  # what a slider does; returns the Figure  # doctest: +SKIP
    """

    def __init__(
        self, image: str = "grace_hopper", size: int = 20, channels: int = 32, n_heads: int = 8,
        n_groups: int = 4, stride: int = 2, offset_range_factor: float = 2.0, query: tuple[int, int] | None = None,
        head: int = 0, seed: int = 0, dpi: int = 72,
    ) -> None:
        _check_build(size, channels, n_heads, n_groups)
        self.size, self.channels, self.n_heads, self.n_groups, self.seed = size, channels, n_heads, n_groups, seed
        self.dpi = dpi
        query = (size // 2, size // 2) if query is None else tuple(query)
        if len(query) != 2:
            raise ValueError(f"query must be two pixel indices (y, x), got {query!r}")
        group = head // (n_heads // n_groups) if _is_int(head) else 0
        self.state = ExplorerState(image, stride, offset_range_factor, query[0], query[1], head, group)
        self._check(self.state)
        self.state = replace(self.state, offset_range_factor=float(offset_range_factor))
        self._images: dict[str, tuple[np.ndarray, object, np.ndarray]] = {}  # name -> (image, features, lum)
        self._models: dict[int, DAttention] = {}  # stride -> model (same weights for every stride)
        self._traces: dict[tuple, DAttentionTrace] = {}  # (image, stride, factor) -> trace
        self.trace_runs = 0  # how many times the model ran: tests check the cache with it
        self.last_redraw_s = 0.0
        self.fig = Figure(figsize=(15.0, 5.0), dpi=dpi, layout="constrained")
        FigureCanvasAgg(self.fig)
        self._background = None
        self._dynamic: list = []
        self._syncing = False
        self.controls = self._build_controls()
        self._picture = widgets.Image(format="jpeg", layout=widgets.Layout(width="100%", max_width="1100px"))
        self.widget = widgets.VBox([self.controls, self._picture])
        self._redraw(full=True)

    # -- the state ---------------------------------------------------------------------------------------
    def _check(self, s: ExplorerState) -> None:
        """Raise ValueError naming the first setting of ``s`` the explorer cannot show."""
        n = self.size
        for name in ("query_y", "query_x", "head", "group", "stride"):
            if not _is_int(getattr(s, name)):
                raise ValueError(f"{name} must be a whole number, got {getattr(s, name)!r}")
        factor = s.offset_range_factor
        if isinstance(factor, bool) or not isinstance(factor, (int, float, np.integer, np.floating)) \
                or not np.isfinite(factor):
            raise ValueError(f"offset_range_factor must be a finite number, got {factor!r}")
        if not isinstance(s.image, str):
            raise ValueError(f"image must be the name of a course image, got {s.image!r}")
        if not (0 <= s.query_y < n and 0 <= s.query_x < n):
            raise ValueError(f"query {(s.query_y, s.query_x)} is outside the {n}x{n} map")
        if not 0 <= s.head < self.n_heads:
            raise ValueError(f"head ({s.head}) must be in 0..{self.n_heads - 1}")
        if not 0 <= s.group < self.n_groups:
            raise ValueError(f"group ({s.group}) must be in 0..{self.n_groups - 1}")
        if s.stride not in STRIDES:
            raise ValueError(f"stride ({s.stride}) must be one of {STRIDES}")
        if s.image not in list_images():
            raise ValueError(f"no image called {s.image!r}; known images: {list_images()}")

    def update(self, **changes) -> Figure:
        """Change some of ``ExplorerState``'s fields (``query_y=3, head=2`` ...) and redraw; returns the Figure.

        A new head shows its own group's offsets; a new group alone moves the head to that group's first head.
        """
        unknown = set(changes) - set(asdict(self.state))
        if unknown:
            raise ValueError(f"unknown explorer settings {sorted(unknown)}; known: {list(asdict(self.state))}")
        per_group = self.n_heads // self.n_groups
        if "head" in changes and "group" not in changes and _is_int(changes["head"]):
            changes["group"] = int(changes["head"]) // per_group
        elif "group" in changes and "head" not in changes and _is_int(changes["group"]) \
                and self.state.head // per_group != changes["group"]:
            changes["head"] = int(changes["group"]) * per_group
        new = replace(self.state, **changes)
        self._check(new)  # a refused setting changes nothing
        new = replace(new, offset_range_factor=float(new.offset_range_factor))
        old = self.state
        full = any(getattr(new, k) != getattr(old, k) for k in SLOW_KEYS)
        self.state = new
        try:
            self._redraw(full=full)
        except Exception:
            self.state = old  # a failed redraw leaves the explorer as it was, picture included
            self._redraw(full=True)
            self._sync_controls()
            raise
        self._sync_controls()
        return self.fig

    @property
    def query(self) -> tuple[int, int]:
        return self.state.query_y, self.state.query_x

    # -- the model and its cached results ----------------------------------------------------------------
    def _image(self, name: str) -> tuple[np.ndarray, object, np.ndarray]:
        if name not in self._images:
            img = load_image(name)
            feats = features_from_image(img, self.channels, self.size, self.seed)  # (1, C, S, S)
            self._images[name] = (img, feats, map_luminance(img, (self.size, self.size)))
        return self._images[name]

    def model(self, stride: int, offset_range_factor: float) -> DAttention:
        """The cached DAttention for this stride, set to this offset_range_factor."""
        if stride not in self._models:
            self._models[stride] = build_model(self.channels, self.size, self.n_heads, self.n_groups, stride,
                                               offset_range_factor, self.seed)
        m = self._models[stride]
        m.offset_range_factor = offset_range_factor  # read at every forward; no weights depend on it
        return m

    def trace(self) -> DAttentionTrace:
        """The trace of the current image, stride and factor (computed once, then cached)."""
        s = self.state
        key = (s.image, s.stride, s.offset_range_factor)
        if key not in self._traces:
            _, feats, _ = self._image(s.image)
            self._traces[key] = self.model(s.stride, s.offset_range_factor).trace(feats)
            self.trace_runs += 1
        return self._traces[key]

    # -- drawing -----------------------------------------------------------------------------------------
    def _redraw(self, full: bool) -> None:
        t0 = time.perf_counter()
        s = self.state
        img, _, lum = self._image(s.image)
        trace = self.trace()
        if full or self._background is None:
            explorer_figure(self.model(s.stride, s.offset_range_factor), img, self.query, s.head, group=s.group,
                            trace=trace, fig=self.fig, lum=lum)
            self._full_draw()
        else:
            update_explorer(self.fig, trace, img.shape[:2], lum, self.query, s.head, s.group)
            self._blit()
        self._picture.value = self.jpeg()
        self.last_redraw_s = time.perf_counter() - t0

    def _dynamic_artists(self) -> list:
        """What a query, head or group change redraws: moving points, titles, the colorbar, the zoom panel."""
        out = []
        for ax in self.fig.axes:
            name = ax.get_label()
            if name in ("offsets", "attention"):
                moving = ("offsets", "sampling", "query", "outside", "attention")
                out += [a for a in (*ax.collections, ax.title) if a.get_gid() in moving or a is ax.title]
            elif name == "bilinear":
                out.append(ax)  # its zoom and ticks move; the colorbar's scale is fixed per trace
        return out

    def _full_draw(self) -> None:
        """Lay out and draw everything, then keep the picture without its moving parts as the background."""
        for a in self._dynamic:
            a.set_animated(False)
        self.fig.set_layout_engine("constrained")
        self.fig.canvas.draw()  # lays the figure out
        self.fig.set_layout_engine("none")  # freeze the layout so that the background stays valid
        self._dynamic = self._dynamic_artists()
        for a in self._dynamic:
            a.set_animated(True)
        self.fig.canvas.draw()
        self._background = self.fig.canvas.copy_from_bbox(self.fig.bbox)
        self._blit()

    def _blit(self) -> None:
        canvas = self.fig.canvas
        canvas.restore_region(self._background)
        for a in self._dynamic:
            self.fig.draw_artist(a)

    def _encode(self, fmt: str, **kw) -> bytes:
        rgba = np.asarray(self.fig.canvas.buffer_rgba())  # (H, W, 4) of the current picture
        buf = io.BytesIO()
        Image.fromarray(rgba[..., :3]).save(buf, format=fmt, **kw)
        return buf.getvalue()

    def png(self) -> bytes:
        """The current picture as PNG bytes (for static output)."""
        return self._encode("png", compress_level=6)

    def jpeg(self) -> bytes:
        """The current picture as JPEG bytes: what the live widget shows (several times faster than PNG)."""
        return self._encode("jpeg", quality=92)

    def static_figure(self) -> Figure:
        """A new, ordinary Figure of the current state (for static output: nbconvert, nbmake, a paper)."""
        s = self.state
        img, _, lum = self._image(s.image)
        return explorer_figure(self.model(s.stride, s.offset_range_factor), img, self.query, s.head,
                               group=s.group, trace=self.trace(), lum=lum)

    # -- the widgets -------------------------------------------------------------------------------------
    def _build_controls(self) -> widgets.Widget:
        s, n, per_group = self.state, self.size, self.n_heads // self.n_groups
        style = {"description_width": "initial"}
        self.w = {
            "query_y": widgets.IntSlider(s.query_y, 0, n - 1, description="query y", style=style),
            "query_x": widgets.IntSlider(s.query_x, 0, n - 1, description="query x", style=style),
            "head": widgets.Dropdown(options=[(f"head {h} (group {h // per_group})", h) for h in range(self.n_heads)],
                                     value=s.head, description="head", style=style),
            "group": widgets.Dropdown(options=list(range(self.n_groups)), value=s.group,
                                      description="offsets of group", style=style),
            "stride": widgets.Dropdown(options=list(STRIDES), value=s.stride, description="stride", style=style),
            "offset_range_factor": widgets.FloatSlider(s.offset_range_factor, min=0.0, max=8.0, step=0.5,
                                                       description="offset_range_factor", style=style,
                                                       continuous_update=False),
            "image": widgets.Dropdown(options=list_images(), value=s.image, description="image", style=style),
        }
        for name, w in self.w.items():
            w.observe(self._on_change(name), names="value")
        return widgets.VBox([
            widgets.HBox([self.w["query_y"], self.w["query_x"], self.w["head"], self.w["group"]]),
            widgets.HBox([self.w["image"], self.w["stride"], self.w["offset_range_factor"]]),
        ])

    def _on_change(self, name: str):
        def handler(change: dict) -> None:
            if not self._syncing:
                self.update(**{name: change["new"]})
        return handler

    def _sync_controls(self) -> None:
        """Show the state on the controls without calling update again."""
        self._syncing = True
        try:
            for name, w in self.w.items():
                if w.value != getattr(self.state, name):
                    w.value = getattr(self.state, name)
        finally:
            self._syncing = False

    # -- display -----------------------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs):
        """The widget for a live frontend, with a PNG of the current picture for anything static."""
        bundle = self.widget._repr_mimebundle_(**kwargs) or {}
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data = dict(data)
        data["image/png"] = base64.b64encode(self.png()).decode("ascii")
        data["text/plain"] = f"Explorer({self.state})"
        return data

    def show(self) -> None:
        """Display the explorer (same as leaving it as a cell's value)."""
        from IPython.display import display

        display(self)


def explorer(**kwargs) -> Explorer:
    """Build an ``Explorer`` (see its arguments)."""
    return Explorer(**kwargs)


class PlotWidget:
    """A figure redrawn by a plain function whenever one of its controls moves.

    ``draw(fig, **state)`` draws the state on a cleared Figure; ``update(**changes)`` is what a control
    calls, and what tests call directly; it returns the Figure. Without a frontend the widget shows a PNG.
    """

    def __init__(self, draw, controls: dict[str, widgets.ValueWidget], figsize=(6.0, 5.0), dpi: int = 80) -> None:
        self.draw, self.w = draw, controls
        self._syncing = False
        self.state = {name: w.value for name, w in controls.items()}
        self.fig = Figure(figsize=figsize, dpi=dpi, layout="constrained")
        FigureCanvasAgg(self.fig)
        self._picture = widgets.Image(format="png", layout=widgets.Layout(max_width=f"{int(figsize[0] * dpi)}px"))
        for name, w in controls.items():
            w.observe(lambda change, name=name: None if self._syncing else self.update(**{name: change["new"]}),
                      names="value")
        self.widget = widgets.VBox([widgets.HBox(list(controls.values())), self._picture])
        self.update()

    def update(self, **changes) -> Figure:
        unknown = set(changes) - set(self.state)
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; known: {sorted(self.state)}")
        old = dict(self.state)
        self.state.update(changes)
        try:
            self._render()
        except Exception:
            self.state = old  # a failed update leaves the widget as it was, picture and controls included
            self._render()
            self._sync_controls()
            raise
        return self.fig

    def _render(self) -> None:
        self.fig.clear()
        self.draw(self.fig, **self.state)
        self.fig.canvas.draw()
        buf = io.BytesIO()
        self.fig.savefig(buf, format="png")
        self._picture.value = buf.getvalue()

    def _sync_controls(self) -> None:
        """Show the state on the controls without drawing again."""
        self._syncing = True
        try:
            for name, w in self.w.items():
                if w.value != self.state[name]:
                    w.value = self.state[name]
        finally:
            self._syncing = False

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs) or {}
        data = dict(bundle[0] if isinstance(bundle, tuple) else bundle)
        data["image/png"] = base64.b64encode(self._picture.value).decode("ascii")
        data["text/plain"] = f"PlotWidget({self.state})"
        return data


def reference_grid_widget(image, size: int = 20) -> PlotWidget:
    """Stride and convention controls over ``plot_reference_grid`` on an image's size x size map."""
    from .reference_plots import plot_reference_grid

    def draw(fig: Figure, stride: int, convention: str) -> None:
        plot_reference_grid(image, stride=stride, convention=convention, size=size, ax=fig.add_subplot())

    return PlotWidget(draw, {
        "stride": widgets.Dropdown(options=[1, 2, 4, 8], value=2, description="stride"),
        "convention": widgets.ToggleButtons(options=["seed", "centered"], value="seed", description="convention"),
    })


def offsets_widget(image, size: int = 20, channels: int = 32, n_groups: int = 4, seed: int = 0) -> PlotWidget:
    """Stride, offset_range_factor and group controls over ``plot_offsets`` for an untrained DAttention."""
    from .offset_plots import plot_offsets

    feats = features_from_image(image, channels, size, seed)  # (1, C, S, S)
    models: dict[int, DAttention] = {}

    def draw(fig: Figure, stride: int, offset_range_factor: float, group: int) -> None:
        if stride not in models:
            models[stride] = build_model(channels, size, n_groups=n_groups, stride=stride, seed=seed)
        m = models[stride]
        m.offset_range_factor = offset_range_factor
        plot_offsets(image, m.trace(feats), group=group, ax=fig.add_subplot(),
                     label=f"untrained, stride {stride}, factor {offset_range_factor:g}")

    return PlotWidget(draw, {
        "stride": widgets.Dropdown(options=list(STRIDES), value=2, description="stride"),
        "offset_range_factor": widgets.FloatSlider(4.0, min=-1.0, max=8.0, step=0.5, description="factor",
                                                   continuous_update=False),
        "group": widgets.Dropdown(options=list(range(n_groups)), value=0, description="group"),
    })


def scene_explorer(model, scenes, n_scenes: int = 16) -> PlotWidget:
    """Scene, query and head controls over the trained scene model's attention (first DAttention block).

    Indices are checked, not wrapped: a negative or too large scene, query or head raises ValueError."""
    from .trained_plots import plot_scene_keys

    block = model.blocks[0]
    S = model.cfg.feature_size
    n = min(n_scenes, len(scenes))
    traces: dict[int, DAttentionTrace] = {}

    def draw(fig: Figure, scene: int, query_y: int, query_x: int, head: int) -> None:
        for name, value, size in (("scene", scene, n), ("query_y", query_y, S), ("query_x", query_x, S),
                                  ("head", head, block.n_heads)):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
                raise ValueError(f"{name} must be an integer in 0..{size - 1}, got {value!r}")
        if scene not in traces:
            traces[scene] = model.trace(scenes.images[scene : scene + 1])[0]
        t = traces[scene]
        group = t.group_of_head(head)
        weights = t.attn[0, head, query_y * t.W + query_x]  # (Ns,)
        query = model.to_image_px(torch.tensor([float(query_y), float(query_x)]))
        plot_scene_keys(fig.add_subplot(), scenes.images[scene], scenes.masks[scene],
                        model.to_image_px(t.positions_px[0, group]), model.to_image_px(t.reference_px),
                        weights=weights, query=query.tolist(), group=group,
                        title=f"scene {scene}, head {head} (group {group}): attention of query ({query_y}, {query_x})")

    return PlotWidget(draw, {
        "scene": widgets.IntSlider(0, 0, n - 1, description="scene"),
        "query_y": widgets.IntSlider(S // 2, 0, S - 1, description="query y"),
        "query_x": widgets.IntSlider(S // 2, 0, S - 1, description="query x"),
        "head": widgets.Dropdown(options=list(range(block.n_heads)), value=0, description="head"),
    }, figsize=(5.5, 5.2))
