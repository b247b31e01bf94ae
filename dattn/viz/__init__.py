"""Figures of the course: static matplotlib plots first (``plots``), then thin ipywidgets shells (``widgets``).

``style`` holds the colours shared by every figure; ``images`` loads the course images.
"""

from .images import image_to_tensor, list_images, load_image, synthetic_scene
from .plots import (
    build_model,
    explorer_figure,
    features_from_image,
    map_to_image,
    plot_attention,
    plot_bilinear,
    plot_half_pixel_shift,
    plot_offsets,
    plot_reference_grid,
)

__all__ = [
    "build_model", "explorer_figure", "features_from_image", "image_to_tensor", "list_images", "load_image",
    "map_to_image", "plot_attention", "plot_bilinear", "plot_half_pixel_shift", "plot_offsets",
    "plot_reference_grid", "synthetic_scene",
]
