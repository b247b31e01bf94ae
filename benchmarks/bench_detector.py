"""CPU inference time of the two trained detectors, measured side by side (not a test).

Both shipped seed-0 detectors (``dattn.yolo.detector``: yolov5n with the stock C3 or C3_DAttention at layer 8)
run one image at a time in eval mode, on one thread, interleaved: each round times stock then c3_dattention (the
order alternates between rounds), so both meet the same machine load. Prints the best and the median of the
rounds with their spread, and the ratio c3_dattention / stock of the bests, with the FLOPs of each forward
(``torch.utils.flop_counter``, attention included).

    python benchmarks/bench_detector.py --rounds 30 --sizes 256 640
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from dattn.yolo.detector import KINDS, load_detector
from dattn.yolo.summary import count_flops


@torch.no_grad()
def bench(size: int, rounds: int, warmup: int = 3) -> dict[str, dict[str, float]]:
    """Seconds per forward of a (1, 3, size, size) image for each kind: best, median, max over the rounds."""
    models = {k: load_detector(k) for k in KINDS}
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    for r in range(warmup + rounds):
        for k in KINDS if r % 2 == 0 else KINDS[::-1]:
            t = time.perf_counter()
            models[k](x)
            if r >= warmup:
                times[k].append(time.perf_counter() - t)
    return {k: {"best": min(v), "median": statistics.median(v), "max": max(v),
                "gflops": count_flops(models[k], size) / 1e9} for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 640])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), batch 1, {args.rounds} interleaved rounds")
    print("| size | model | GFLOPs | best ms | median ms | slowest ms | best / stock's best |")
    print("|---|---|---|---|---|---|---|")
    for size in args.sizes:
        res = bench(size, args.rounds)
        for k in KINDS:
            r = res[k]
            print(f"| {size} | {k} | {r['gflops']:.3f} | {1e3 * r['best']:.1f} | {1e3 * r['median']:.1f} "
                  f"| {1e3 * r['max']:.1f} | {r['best'] / res['stock']['best']:.3f} |")


if __name__ == "__main__":
    main()
