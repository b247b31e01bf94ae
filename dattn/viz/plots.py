"""The figures of the course under their former single-module name (``dattn.viz.plots``).

Each family now lives in its own module: ``mapping`` (map <-> image pixels, axes, points off the map),
``reference_plots`` (notebook 1), ``offset_plots`` (2), ``bilinear_plots`` and ``sampling_plots`` (3),
``attention_plots`` (4), ``explorer_plots`` (the three-panel explorer), ``features`` (the image features and
the untrained DAttention the pictures use). This module re-exports their public names.
"""

from .attention_plots import attention_sizes, plot_attention, query_attention, update_attention
from .bilinear_plots import bilinear_neighbours, bilinear_value, plot_bilinear, update_bilinear
from .explorer_plots import explorer_figure, heaviest_key, update_explorer
from .features import box_blur, build_model, features_from_image, image_channels, map_luminance, resize_image
from .mapping import image_to_map, map_to_image, mark_query, outside_map
from .offset_plots import plot_offsets, update_offsets
from .reference_plots import plot_half_pixel_shift, plot_reference_grid, reference_grid_px

__all__ = [
    "attention_sizes",
    "bilinear_neighbours",
    "bilinear_value",
    "box_blur",
    "build_model",
    "explorer_figure",
    "features_from_image",
    "heaviest_key",
    "image_channels",
    "image_to_map",
    "map_luminance",
    "map_to_image",
    "mark_query",
    "outside_map",
    "plot_attention",
    "plot_bilinear",
    "plot_half_pixel_shift",
    "plot_offsets",
    "plot_reference_grid",
    "query_attention",
    "reference_grid_px",
    "resize_image",
    "update_attention",
    "update_bilinear",
    "update_explorer",
    "update_offsets",
]
