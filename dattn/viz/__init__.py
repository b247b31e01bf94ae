"""Figures of the course: static matplotlib plots first, one module per figure family, then thin ipywidgets
shells over them (``widgets``).

``style`` holds the colours shared by every figure, ``images`` loads the course images, ``mapping`` places
map points on an image, ``features`` makes the image features and the untrained DAttention the pictures use.
``plots`` re-exports the figure functions under the package's former single-module name.
"""

from .attention_plots import plot_attention, plot_cost, plot_log_cpb_spacing, plot_position_bias
from .bilinear_plots import plot_bilinear
from .coordinates import plot_align_corners, plot_offset_bound
from .explorer_plots import explorer_figure
from .features import build_model, features_from_image, resize_image
from .images import image_to_tensor, list_images, load_image, synthetic_scene
from .mapping import map_to_image
from .offset_plots import plot_offsets
from .reference_plots import plot_half_pixel_shift, plot_reference_grid
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
