"""Figures of the course: static matplotlib plots first (``plots``), then thin ipywidgets shells (``widgets``).

``style`` holds the colours shared by every figure; ``images`` loads the course images.
"""

from .attention_plots import plot_cost, plot_log_cpb_spacing, plot_position_bias
from .coordinates import plot_align_corners, plot_offset_bound
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
    resize_image,
)
from .sampling_plots import plot_border_profile, plot_gradient_walk
from .yolo_plots import plot_gflops_vs_size, plot_layer_params, plot_scaling

__all__ = [
    "build_model",
    "explorer_figure",
    "features_from_image",
    "image_to_tensor",
    "list_images",
    "load_image",
    "map_to_image",
    "plot_align_corners",
    "plot_attention",
    "plot_bilinear",
    "plot_border_profile",
    "plot_cost",
    "plot_gflops_vs_size",
    "plot_gradient_walk",
    "plot_half_pixel_shift",
    "plot_layer_params",
    "plot_log_cpb_spacing",
    "plot_offset_bound",
    "plot_offsets",
    "plot_position_bias",
    "plot_reference_grid",
    "plot_scaling",
    "resize_image",
    "synthetic_scene",
]
