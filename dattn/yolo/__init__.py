"""YOLOv5 (v7.0 layout) rebuilt from its yaml files, with the seed's C3_DAttention block.

Build a model with :func:`build_model` and print it with :func:`summary`::

    from dattn.yolo import build_model, summary
    model = build_model("yolov5_C3_DAttention.yaml", scale="n")
    print(summary(model, img=640))
"""

from .common import C3, SPPF, Bottleneck, Concat, Conv, autopad
from .fused import Bottleneck_DAttention, C3_DAttention
from .heads import Detect, Proto, Segment
from .model import (
    SCALES,
    DetectionModel,
    SegmentationModel,
    build_model,
    load_cfg,
    make_divisible,
    parse_model,
    scale_cfg,
    shipped_configs,
)
from .summary import count_flops, gflops, scaling_table, stock_profile_gflops, summary, summary_line

__all__ = [
    "C3",
    "SCALES",
    "SPPF",
    "Bottleneck",
    "Bottleneck_DAttention",
    "C3_DAttention",
    "Concat",
    "Conv",
    "Detect",
    "DetectionModel",
    "Proto",
    "Segment",
    "SegmentationModel",
    "autopad",
    "build_model",
    "count_flops",
    "gflops",
    "load_cfg",
    "make_divisible",
    "parse_model",
    "scale_cfg",
    "scaling_table",
    "shipped_configs",
    "stock_profile_gflops",
    "summary",
    "summary_line",
]
