#!/usr/bin/env python3
"""PyTorch's numbers for the cases bench/kiln_bench.cpp measures.

Prints tab-separated rows `section  case  torch  value` that
`kiln_bench --torch FILE` reads, so the two programs' case names must match.
Timing mirrors kiln_bench: the best sample for matmul and bandwidth, the
median for per-op overhead, each sample timing a batch of calls. Run through bench/run.sh, which sets equal thread counts.
"""
import argparse
import statistics
import sys
import time

import torch


def time_per_call(f, best, min_seconds, min_samples=5, batch=1, max_samples=2000):
    """Seconds per call: the best sample if `best`, else the median (as kiln_bench)."""
    for _ in range(max(1, batch // 4)):
        f()
    samples, total = [], 0.0
    while (len(samples) < min_samples or total < min_seconds) and len(samples) < max_samples:
        t0 = time.perf_counter()
        for _ in range(batch):
            f()
        s = time.perf_counter() - t0
        samples.append(s / batch)
        total += s
    return min(samples) if best else statistics.median_high(samples)


def row(section, case, value):
    print(f"{section}\t{case}\ttorch\t{value:.6g}", flush=True)


def bench_matmul(quick):
    sizes = [128, 512] if quick else [128, 256, 512, 1024, 2048]
    min_s = 0.1 if quick else 0.4
    for n in sizes:
        a = torch.randn(n, n)
        b = torch.randn(n, n)
        flops = 2.0 * n ** 3
        with torch.no_grad():
            for name, lhs, rhs in (("A*B", a, b), ("At*B", a.t(), b), ("A*Bt", a, b.t())):
                t = time_per_call(lambda: torch.mm(lhs, rhs), True, min_s)
                row("matmul", f"n={n} {name}", flops / t * 1e-9)


def bench_bandwidth(quick):
    n = 1 << 22 if quick else 1 << 24
    min_s = 0.1 if quick else 0.5
    a = torch.randn(n)
    b = torch.randn(n)
    dst = torch.zeros(n)
    gelu = torch.nn.functional.gelu
    with torch.no_grad():
        for name, bytes_per_elem, f in (
            ("copy_", 8, lambda: dst.copy_(a)),
            ("add", 12, lambda: torch.add(a, b)),
            ("mul", 12, lambda: torch.mul(a, b)),
            ("gelu", 8, lambda: gelu(a)),
            ("sum", 4, lambda: torch.sum(a)),
        ):
            t = time_per_call(f, True, min_s)
            row("bandwidth", name, bytes_per_elem * n / t * 1e-9)


def bench_overhead(quick):
    min_s = 0.05 if quick else 0.3
    batch = 100

    def measure(case, f):
        row("overhead", case, time_per_call(f, False, min_s, 21, batch) * 1e6)

    for numel in (1, 16):
        shape = f"[{numel}]"
        x, y = torch.randn(numel), torch.randn(numel)
        measure(f"add {shape} fwd", lambda: torch.add(x, y))
        measure(f"mul {shape} fwd", lambda: torch.mul(x, y))
        measure(f"sum {shape} fwd", lambda: torch.sum(x))

        xg = torch.randn(numel, requires_grad=True)
        yg = torch.randn(numel, requires_grad=True)
        ones = torch.ones(numel)

        def fwd_bwd(op):
            def f():
                op().backward(ones)
                xg.grad = None
                yg.grad = None
            return f

        def sum_bwd():
            torch.sum(xg).backward()
            xg.grad = None

        measure(f"add {shape} fwd+bwd", fwd_bwd(lambda: torch.add(xg, yg)))
        measure(f"mul {shape} fwd+bwd", fwd_bwd(lambda: torch.mul(xg, yg)))
        measure(f"sum {shape} fwd+bwd", sum_bwd)

    a, b = torch.randn(4, 4), torch.randn(4, 4)
    measure("matmul 4x4 fwd", lambda: torch.matmul(a, b))
    ag = torch.randn(4, 4, requires_grad=True)
    bg = torch.randn(4, 4, requires_grad=True)
    ones = torch.ones(4, 4)

    def mm_bwd():
        torch.matmul(ag, bg).backward(ones)
        ag.grad = None
        bg.grad = None

    measure("matmul 4x4 fwd+bwd", mm_bwd)


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (default: torch's own)")
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"# torch {torch.__version__}, {torch.get_num_threads()} threads", file=sys.stderr)
    bench_matmul(args.quick)
    bench_bandwidth(args.quick)
    bench_overhead(args.quick)


if __name__ == "__main__":
    main()
