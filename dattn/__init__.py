"""dattn: the helper package of a course on Deformable Attention (DAT) and its fusion into YOLOv5's C3.

Each module holds one idea of the course, in the order of the notebooks:

* ``dattn.geometry``  reference points and coordinate conventions        (notebook 1)
* ``dattn.offsets``   the offset network and its tanh bound              (notebook 2)
* ``dattn.sampling``  bilinear sampling by hand and with grid_sample     (notebook 3)
* ``dattn.attention`` DAttention, its fused path and ``trace``           (notebook 4)
* ``dattn.position_bias``  the table, log-CPB and fixed position biases   (notebook 4)
* ``dattn.yolo``      YOLOv5 blocks, C3_DAttention, yaml models, FLOPs   (notebook 5)
* ``dattn.data``, ``dattn.train``  synthetic scenes and the trained models (notebook 6)
* ``dattn.viz``       plots and widgets; ``dattn.checks`` exercise checkers
"""

from .attention import DAttention, DAttentionTrace
from .geometry import norm_to_pixel, pixel_to_norm, query_grid, reference_points
from .offsets import LayerNormProxy, bound_offsets, offset_network, sampling_positions
from .sampling import bilinear_sample, sample_keys

__version__ = "0.1.0"

__all__ = [
    "DAttention",
    "DAttentionTrace",
    "LayerNormProxy",
    "bilinear_sample",
    "bound_offsets",
    "norm_to_pixel",
    "offset_network",
    "pixel_to_norm",
    "query_grid",
    "reference_points",
    "sample_keys",
    "sampling_positions",
]
