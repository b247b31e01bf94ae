"""ipywidgets shells that redraw a matplotlib figure in the kernel (``PlotWidget``, ``scene_explorer``), and the
names under which notebooks import the widgets drawn in the browser (``dattn.viz.live``).

The explorer, the reference grid and the offsets widget answer the pointer without the kernel: see
``dattn.viz.live`` (``trained_explorer``, ``untrained_explorer``, ``reference_grid_widget``,
``offsets_widget``). ``PlotWidget`` remains for figures whose every state cannot be computed ahead.
"""

from __future__ import annotations

import base64
import io

import ipywidgets as widgets
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..attention import DAttentionTrace
from .live import offsets_widget, reference_grid_widget, trained_explorer, untrained_explorer

__all__ = ["PlotWidget", "offsets_widget", "reference_grid_widget", "scene_explorer", "trained_explorer",
           "untrained_explorer"]


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
