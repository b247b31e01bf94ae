"""Build a YOLOv5 model from a yaml and print its summary, GFLOPs included.

python -m dattn.yolo --cfg yolov5_C3_DAttention.yaml --img 640 [--scale n] [--stock-profile]
"""

from __future__ import annotations

import argparse
import sys

from .model import SCALES, build_model, shipped_configs
from .summary import stock_profile_gflops, summary


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m dattn.yolo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cfg",
        default="yolov5_C3_DAttention.yaml",
        help=f"a yaml path or a shipped name: {shipped_configs()}",
    )
    parser.add_argument("--img", type=int, nargs="+", default=[640], help="input size: S or H W (default 640)")
    parser.add_argument("--scale", choices=list(SCALES), help="apply YOLOv5's n/s/m/l/x depth and width multiples")
    parser.add_argument(
        "--stock-profile",
        action="store_true",
        help="also print the GFLOPs as YOLOv5's model_info estimates them (32x32 profile, scaled)",
    )
    args = parser.parse_args(argv)
    if len(args.img) not in (1, 2):
        parser.error(f"--img takes one or two sizes, got {len(args.img)}")
    img = args.img[0] if len(args.img) == 1 else tuple(args.img)
    try:
        model = build_model(args.cfg, scale=args.scale)
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(summary(model, img=img))
    if args.stock_profile:
        g = stock_profile_gflops(model, img)
        print("stock profile: " + ("no GFLOPs (the profile raised)" if g is None else f"{g:.1f} GFLOPs"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
