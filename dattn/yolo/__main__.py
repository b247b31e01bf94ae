"""Build a YOLOv5 model from a yaml and print its summary, GFLOPs included.

python -m dattn.yolo --cfg yolov5_C3_DAttention.yaml --img 640 [--scale n] [--stock-profile]
"""

from __future__ import annotations

import argparse
import sys

from .model import SCALES, build_model, shipped_configs
from .stock import unseen_by_thop, yolov5_summary_line
from .summary import check_multiple_of_stride, image_size, summary


def positive_int(text: str) -> int:
    """argparse type: an int >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive int, got {value}")
    return value


def stock_lines(model, img) -> list[str]:
    """YOLOv5 v7.0's own summary line for the model, and what its thop count does not see at img."""
    h, w = image_size(img)
    unseen = unseen_by_thop(model, (h, w))
    s = max(int(model.stride.max()), 32)
    lines = [
        f"(GFLOPs above: torch.utils.flop_counter over one {h}x{w} forward, attention included)",
        f"YOLOv5 v7.0 prints (thop at one {s}x{s} image, scaled to {h}x{w}):",
        yolov5_summary_line(model, [h, w]),
        f"thop does not see {unseen['total'] / 1e9:.2f} GFLOPs at {h}x{w} (torch.utils.flop_counter): "
        f"{unseen['attention'] / 1e9:.2f} in scaled_dot_product_attention (q·k and weights·v), "
        f"{unseen['other'] / 1e9:.2f} in other products run outside nn.Conv2d / nn.Linear calls",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status (2 for bad input, with one line on stderr)."""
    parser = argparse.ArgumentParser(prog="python -m dattn.yolo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--cfg",
        default="yolov5_C3_DAttention.yaml",
        help="a yaml file; a bare name (no folder) that is not a file in the current folder reads the shipped "
        f"config of that name, one of {shipped_configs()}. A path with a folder must exist.",
    )
    parser.add_argument(
        "--img", type=positive_int, nargs="+", default=[640],
        help="input size S or H W, multiples of the model's largest stride (default 640)",
    )
    parser.add_argument("--scale", choices=list(SCALES), help="apply YOLOv5's n/s/m/l/x depth and width multiples")
    parser.add_argument(
        "--stock-profile",
        action="store_true",
        help="also print the summary line YOLOv5 v7.0 prints for this model (its thop count at one stride-size "
        "image, scaled) and the FLOPs thop does not see",
    )
    args = parser.parse_args(argv)
    if len(args.img) not in (1, 2):
        parser.error(f"--img takes one or two sizes, got {len(args.img)}")
    img = args.img[0] if len(args.img) == 1 else tuple(args.img)
    try:
        model = build_model(args.cfg, scale=args.scale)
        check_multiple_of_stride(model, *image_size(img))
        text = summary(model, img=img)
        if args.stock_profile:
            text += "\n" + "\n".join(stock_lines(model, img))
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
