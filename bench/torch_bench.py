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


def bench_conv2d(quick):
    """BiT-R50's convolutions and a depthwise 3x3, as kiln_bench's section (d)."""
    n = 2 if quick else 8
    min_s = 0.1 if quick else 1.0
    conv2d = torch.nn.functional.conv2d
    cases = (
        ("7x7/2 3-64 224", 3, 64, 224, 7, 2, 1),
        ("1x1 256-64 56", 256, 64, 56, 1, 1, 1),
        ("3x3 64ch 56", 64, 64, 56, 3, 1, 1),
        ("1x1 64-256 56", 64, 256, 56, 1, 1, 1),
        ("3x3/2 128ch 56", 128, 128, 56, 3, 2, 1),
        ("dw3x3 64ch 56", 64, 64, 56, 3, 1, 64),
    )
    for name, cin, cout, size, kernel, stride, groups in cases:
        x = torch.randn(n, cin, size, size)
        w = torch.randn(cout, cin // groups, kernel, kernel)
        b = torch.randn(cout)
        pad = kernel // 2

        def fwd():
            with torch.no_grad():
                conv2d(x, w, b, stride, pad, 1, groups)

        row("conv2d", f"{name} fwd", time_per_call(fwd, True, min_s, 3) * 1e3)
        x.requires_grad_()
        w.requires_grad_()
        b.requires_grad_()
        with torch.no_grad():
            grad_out = torch.randn_like(conv2d(x, w, b, stride, pad, 1, groups))

        def fwd_bwd():
            conv2d(x, w, b, stride, pad, 1, groups).backward(grad_out)
            x.grad = None
            w.grad = None
            b.grad = None

        row("conv2d", f"{name} fwd+bwd", time_per_call(fwd_bwd, True, min_s, 3) * 1e3)


def bench_norm(quick):
    """layer_norm, group_norm and batch_norm, as kiln_bench's section (e)."""
    min_s = 0.1 if quick else 1.0
    F = torch.nn.functional
    rm, rv = torch.zeros(256), torch.ones(256)
    cases = (
        ("layernorm", (8 * 197, 768), lambda x, w, b: F.layer_norm(x, (768,), w, b), True),
        ("groupnorm", (8, 256, 56, 56), lambda x, w, b: F.group_norm(x, 32, w, b), True),
        ("batchnorm", (8, 256, 56, 56), lambda x, w, b: F.batch_norm(x, rm, rv, w, b, True), True),
        ("batchnorm eval", (8, 256, 56, 56), lambda x, w, b: F.batch_norm(x, rm, rv, w, b, False), False),
    )
    for name, shape, op, backward in cases:
        ch = 768 if shape[-1] == 768 else shape[1]
        x, w, b = torch.randn(*shape), torch.randn(ch), torch.randn(ch)

        def fwd():
            with torch.no_grad():
                op(x, w, b)

        row("norm", f"{name} fwd", time_per_call(fwd, True, min_s, 3) * 1e3)
        if not backward:
            continue
        x.requires_grad_()
        w.requires_grad_()
        b.requires_grad_()
        grad_out = torch.randn(*shape)

        def fwd_bwd():
            op(x, w, b).backward(grad_out)
            x.grad = None
            w.grad = None
            b.grad = None

        row("norm", f"{name} fwd+bwd", time_per_call(fwd_bwd, True, min_s, 3) * 1e3)


def bit_r50_parameter_shapes():
    """BiT-R50's parameter shapes, as kiln_bench's bit_r50_parameter_shapes."""
    shapes, cin = [(64, 3, 7, 7)], 64
    for stage, blocks in enumerate((3, 4, 6, 3)):
        out = 256 << stage
        mid = out // 4
        for b in range(blocks):
            if b == 0:
                shapes.append((out, cin, 1, 1))
            shapes += [(cin,), (cin,), (mid, cin, 1, 1), (mid,), (mid,), (mid, mid, 3, 3), (mid,), (mid,),
                       (out, mid, 1, 1)]
            cin = out
    return shapes + [(cin,), (cin,), (1000, cin), (1000,)]


def bench_training_pieces(quick):
    """cross_entropy over a 50K vocabulary and clip_grad_norm_, as kiln_bench's section (f)."""
    min_s = 0.1 if quick else 1.0
    F = torch.nn.functional
    logits = torch.randn(512, 50265)
    labels = torch.randint(0, 50265, (512,))
    for ls in (0.0, 0.1):
        name = "xent ls=0.1" if ls > 0 else "xent"

        def fwd():
            with torch.no_grad():
                F.cross_entropy(logits, labels, label_smoothing=ls)

        row("step", f"{name} fwd", time_per_call(fwd, True, min_s, 3) * 1e3)
        logits.requires_grad_()

        def fwd_bwd():
            F.cross_entropy(logits, labels, label_smoothing=ls).backward()
            logits.grad = None

        row("step", f"{name} fwd+bwd", time_per_call(fwd_bwd, True, min_s, 3) * 1e3)
        logits.requires_grad_(False)
    params = []
    for shape in bit_r50_parameter_shapes():
        p = torch.zeros(shape)
        p.grad = torch.randn(shape)
        params.append(p)
    clip = lambda: torch.nn.utils.clip_grad_norm_(params, 1e9)
    row("step", "clip_grad_norm_", time_per_call(clip, True, min_s, 3) * 1e3)


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
    bench_conv2d(args.quick)
    bench_norm(args.quick)
    bench_training_pieces(args.quick)


if __name__ == "__main__":
    main()
