"""DAttention: the seed's explicit einsum path against the fused scaled_dot_product_attention path.

Measured side by side in one run (interleaved repeats, medians), because a shared machine is noisy:

    python benchmarks/bench_dattention.py              # the four sizes of the issue
    python benchmarks/bench_dattention.py --markdown   # the same, as the README's table
    python benchmarks/bench_dattention.py --keep-freed-memory   # glibc keeps freed memory (no page faults)

Peak memory is the largest total of tensor storage alive during one call (dattn.profiling.TensorMemory).
GFLOP/s divides the FLOPs counted by dattn.profiling.count_flops (convolutions, matmuls, attention) by the time; the
reference is a plain 1024 x 1024 fp32 matmul timed in turn with the two paths.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch

from dattn.attention import DAttention
from dattn.profiling import count_flops, interleaved_medians, keep_freed_memory, peak_memory

CONFIGS = [(512, 20, 8, 1), (256, 40, 4, 1), (128, 80, 1, 1), (128, 80, 1, 4)]  # (C, H, batch, stride)


def bench_one(C: int, H: int, batch: int, stride: int, reps: int, budget_s: float) -> dict:
    torch.manual_seed(0)
    m = DAttention(C, (H, H), stride=stride).eval()
    x = torch.randn(batch, C, H, H)

    def infer(fused: bool) -> Callable[[], object]:
        def run():
            m.fused = fused
            with torch.no_grad():
                return m(x)
        return run

    def train(fused: bool) -> Callable[[], object]:
        def run():
            m.fused = fused
            xg = x.detach().requires_grad_()
            m(xg).sum().backward()
        return run

    row = dict(C=C, H=H, batch=batch, stride=stride, Ns=m.offsets(m.proj_q(x[:1])).shape[1:3].numel())
    with torch.no_grad():
        row["gflop"] = count_flops(infer(False)) / 1e9
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    t_inf = interleaved_medians({"explicit": infer(False), "fused": infer(True), "mm": lambda: a @ b}, reps, budget_s)
    t_train = interleaved_medians({"explicit": train(False), "fused": train(True)}, reps, budget_s)
    row.update(
        inf_explicit=t_inf["explicit"], inf_fused=t_inf["fused"], mm_gflops=2 * 1024**3 / t_inf["mm"] / 1e9,
        train_explicit=t_train["explicit"], train_fused=t_train["fused"],
        mem_explicit=peak_memory(infer(False)), mem_fused=peak_memory(infer(True)),
        mem_train_explicit=peak_memory(train(False)), mem_train_fused=peak_memory(train(True)),
    )
    m.zero_grad(set_to_none=True)
    return row


def _mib(b: int | None) -> str:
    return "n/a" if b is None else f"{b / 2**20:.0f}"


def _ratio(a: int | None, b: int | None) -> str:
    return "n/a" if not a or not b else f"{a / b:.1f}x"


def format_table(rows: list[dict], markdown: bool, allocator: str) -> str:
    head = ["C", "HxW", "B", "stride", "keys", "GFLOP", "infer explicit ms", "infer fused ms", "speed-up",
            "fwd+bwd explicit ms", "fwd+bwd fused ms", "speed-up", "peak MiB explicit", "peak MiB fused",
            "memory ratio", "fused GFLOP/s", "matmul GFLOP/s", "% of matmul"]
    lines = []
    for r in rows:
        lines.append([
            r["C"], f"{r['H']}x{r['H']}", r["batch"], r["stride"], r["Ns"], f"{r['gflop']:.2f}",
            f"{1e3 * r['inf_explicit']:.1f}", f"{1e3 * r['inf_fused']:.1f}",
            f"{r['inf_explicit'] / r['inf_fused']:.1f}x",
            f"{1e3 * r['train_explicit']:.1f}", f"{1e3 * r['train_fused']:.1f}",
            f"{r['train_explicit'] / r['train_fused']:.1f}x",
            _mib(r["mem_explicit"]), _mib(r["mem_fused"]), _ratio(r["mem_explicit"], r["mem_fused"]),
            f"{r['gflop'] / r['inf_fused']:.0f}", f"{r['mm_gflops']:.0f}",
            f"{100 * r['gflop'] / r['inf_fused'] / r['mm_gflops']:.0f}%",
        ])
    cells = [head] + [[str(c) for c in row] for row in lines]
    if markdown:
        out = ["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(row) + " |" for row in cells[1:]]
    else:
        widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
        out = ["  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    out.append(f"\nmatmul: a plain 1024x1024 fp32 product timed in turn with the two paths; torch "
               f"{torch.__version__}, {torch.get_num_threads()} threads; {allocator}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="*", help="C,H,batch,stride tuples, e.g. 128,80,1,4")
    ap.add_argument("--reps", type=int, default=3, help="at least this many timed calls per path")
    ap.add_argument("--budget", type=float, default=3.0, help="seconds of timed calls per measurement")
    ap.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ap.add_argument("--keep-freed-memory", action="store_true",
                    help="ask glibc to keep freed memory for reuse (dattn.profiling.keep_freed_memory)")
    args = ap.parse_args(argv)
    allocator = "glibc malloc, default settings"
    if args.keep_freed_memory:
        allocator = "malloc keeps freed memory" if keep_freed_memory() else "keep_freed_memory had no effect"
    configs = [tuple(int(v) for v in c.split(",")) for c in args.configs] if args.configs else CONFIGS
    rows = []
    for i, cfg in enumerate(configs, 1):
        print(f"[{i}/{len(configs)}] C={cfg[0]} H={cfg[1]} batch={cfg[2]} stride={cfg[3]} ...", flush=True)
        rows.append(bench_one(*cfg, reps=args.reps, budget_s=args.budget))
    print(format_table(rows, args.markdown, allocator))
    return rows


if __name__ == "__main__":
    main()
