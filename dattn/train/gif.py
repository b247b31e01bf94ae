"""The training GIF: the sampled keys on one held-out scene at every snapshot, written atomically."""

from __future__ import annotations

from pathlib import Path

from ..data import Scenes
from .checkpoints import atomic_write
from .loop import History


def save_training_gif(history: History, scene: Scenes, path: str | Path, fps: int = 5) -> None:
    """Animate ``history``'s snapshots of the keys on ``scene`` (one scene) into a GIF at ``path``."""
    import tempfile

    from ..viz.trained_plots import gif_frames

    path = Path(path)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        frames = Path(tmp) / path.name
        gif_frames(history, scene, frames, fps=fps)
        atomic_write(path, lambda f: f.write(frames.read_bytes()))
