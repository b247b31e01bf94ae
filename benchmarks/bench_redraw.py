"""Median redraw time of the explorer after a slider move, on a 20x20 map (not a test).

A "redraw" is everything ``Explorer.update`` does for a query or head change: move the artists, blit them
onto the cached background and encode the JPEG the widget shows. Run: ``python benchmarks/bench_redraw.py``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from dattn.viz.widgets import Explorer


def bench(n: int = 40, size: int = 20, stride: int = 2) -> dict[str, float]:
    """Median seconds of ``n`` query moves, ``n`` head changes, and a few stride changes (full redraws)."""
    ex = Explorer(size=size, stride=stride)
    moves = [((7 * i) % size, (3 * i + 1) % size) for i in range(n)]
    query_s, head_s = [], []
    for y, x in moves:
        t = time.perf_counter()
        ex.update(query_y=y, query_x=x)
        query_s.append(time.perf_counter() - t)
    for i in range(n):
        t = time.perf_counter()
        ex.update(head=(i + 1) % ex.n_heads)
        head_s.append(time.perf_counter() - t)
    full_s = []
    for s in (1, 4, stride):
        t = time.perf_counter()
        ex.update(stride=s)
        full_s.append(time.perf_counter() - t)
    return {"query": statistics.median(query_s), "head": statistics.median(head_s),
            "full": statistics.median(full_s)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=40, help="slider moves to time")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (the target is 2 cores)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    r = bench(args.n)
    print(f"20x20 map, {args.threads} torch threads, {args.n} moves each")
    print(f"median redraw after a query move : {1000 * r['query']:6.1f} ms  (target < 100 ms)")
    print(f"median redraw after a head change: {1000 * r['head']:6.1f} ms")
    print(f"median full redraw (new stride)  : {1000 * r['full']:6.1f} ms  (runs the model, lays out again)")


if __name__ == "__main__":
    main()
