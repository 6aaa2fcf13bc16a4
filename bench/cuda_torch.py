#!/usr/bin/env python3
"""PyTorch on the GPU, measured as bench/cuda_bench.cpp measures Kiln: the
same cases under the same names, so bench/cuda_run.sh can put them side by
side.

    python bench/cuda_torch.py [--quick] [--tsv]

Rows: matmul TFLOP/s at 4096^3 (bf16, TF32, f32; torch.matmul, and
torch.matmul into a preallocated out= for Kiln's direct cuBLASLt row);
bandwidth GB/s (bytes read + written) of add/mul/gelu, softmax, layer_norm
and a device-to-device copy; conv2d forward and backward (input + weight
gradients, aten.convolution_backward) on BiT-R50 shapes in ms, f32 with
TF32 off and bf16; cudaMalloc calls (new segments) over 10 steady-state
AdamW steps of the same MLP, allocations per step, and the step's time.
Times: CUDA events on the current stream, the median of samples of ~2 ms
each after a warm-up. Without a GPU it says so and exits 0.
"""
import argparse
import statistics
import sys

import torch
import torch.nn.functional as F

ARGS = None


def row(name, value, unit):
    if ARGS.tsv:
        print(f"{name}\t{value:.6g}\t{unit}")
    else:
        print(f"{name:<36} {value:14.3f}  {unit}")
    sys.stdout.flush()


def median_ms(f, warmup=3):
    samples = 5 if ARGS.quick else 15
    for _ in range(warmup):
        f()
    start = torch.cuda.Event(enable_timing=True)
    stop = torch.cuda.Event(enable_timing=True)
    start.record()
    f()
    stop.record()
    stop.synchronize()
    one = max(1e-3, start.elapsed_time(stop))
    reps = min(1000, max(1, int(2.0 / one)))
    ms = []
    for _ in range(samples):
        start.record()
        for _ in range(reps):
            f()
        stop.record()
        stop.synchronize()
        ms.append(start.elapsed_time(stop) / reps)
    return statistics.median(ms)


def gpu(*shape, dtype=torch.float32):
    return torch.randn(*shape, device="cuda", dtype=dtype)


def matmul_rows():
    n = 4096
    flop = 2.0 * n * n * n
    for name, dtype, tf32 in (("bf16", torch.bfloat16, False), ("tf32", torch.float32, True),
                              ("f32", torch.float32, False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a, b = gpu(n, n, dtype=dtype), gpu(n, n, dtype=dtype)
        out = torch.empty(n, n, device="cuda", dtype=dtype)
        row(f"matmul_{name}_{n}", flop / (median_ms(lambda: torch.matmul(a, b)) * 1e-3) / 1e12, "TFLOP/s")
        row(f"matmul_lt_{name}_{n}", flop / (median_ms(lambda: torch.matmul(a, b, out=out)) * 1e-3) / 1e12,
            "TFLOP/s")
    torch.backends.cuda.matmul.allow_tf32 = False


def bandwidth_rows():
    n = 1 << 26
    rows, cols = 1 << 16, 1024

    def gbs(nbytes, ms):
        return nbytes / (ms * 1e-3) / 1e9

    src = gpu(n)
    dst = torch.empty_like(src)
    row("memcpy_d2d_256MB", gbs(2.0 * n * 4, median_ms(lambda: dst.copy_(src))), "GB/s")
    for dtype, tag in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
        es = torch.tensor([], dtype=dtype).element_size()
        a, b = gpu(n, dtype=dtype), gpu(n, dtype=dtype)
        row(f"add_{tag}_64M", gbs(3.0 * n * es, median_ms(lambda: torch.add(a, b))), "GB/s")
        row(f"mul_{tag}_64M", gbs(3.0 * n * es, median_ms(lambda: torch.mul(a, b))), "GB/s")
        row(f"gelu_{tag}_64M", gbs(2.0 * n * es, median_ms(lambda: F.gelu(a))), "GB/s")
        x = gpu(rows, cols, dtype=dtype)
        w, bias = gpu(cols).to(dtype), gpu(cols).to(dtype)
        row(f"softmax_{tag}_65536x1024", gbs(2.0 * rows * cols * es, median_ms(lambda: torch.softmax(x, -1))), "GB/s")
        row(f"layer_norm_{tag}_65536x1024",
            gbs(2.0 * rows * cols * es, median_ms(lambda: F.layer_norm(x, (cols,), w, bias))), "GB/s")


def conv_rows():
    shapes = (("conv_stem7x7s2_b32", 32, 3, 224, 224, 64, 7, 2, 3),
              ("conv_3x3_64_56_b32", 32, 64, 56, 56, 64, 3, 1, 1),
              ("conv_1x1_256to64_56_b32", 32, 256, 56, 56, 64, 1, 1, 0))
    torch.backends.cudnn.allow_tf32 = False
    for dtype, tag in ((torch.float32, "f32"), (torch.bfloat16, "bf16")):
        for name, n, cin, h, w_, cout, k, stride, pad in shapes:
            x = gpu(n, cin, h, w_, dtype=dtype)
            w = gpu(cout, cin, k, k, dtype=dtype)
            y = F.conv2d(x, w, None, stride, pad)
            gy = torch.randn_like(y)
            row(f"{name}_fwd_{tag}", median_ms(lambda: F.conv2d(x, w, None, stride, pad)), "ms")
            row(f"{name}_bwd_{tag}", median_ms(lambda: torch.ops.aten.convolution_backward(
                gy, x, w, None, [stride, stride], [pad, pad], [1, 1], False, [0, 0], 1, [True, True, False])), "ms")


def allocator_rows():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(512, 2048), torch.nn.GELU(), torch.nn.Linear(2048, 512),
                                torch.nn.LayerNorm(512), torch.nn.Linear(512, 10)).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = gpu(256, 512)
    y = torch.randint(0, 10, (256,), device="cuda")

    def step():
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()

    with torch.enable_grad():
        for _ in range(3):
            step()
        torch.cuda.synchronize()
        before = torch.cuda.memory_stats()
        for _ in range(10):
            step()
        torch.cuda.synchronize()
        after = torch.cuda.memory_stats()
        row("cudamalloc_calls_10_steps", after["segment.all.allocated"] - before["segment.all.allocated"], "count")
        row("allocations_per_step", (after["allocation.all.allocated"] - before["allocation.all.allocated"]) / 10.0,
            "count")
        row("train_step_mlp_b256", median_ms(step), "ms")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--tsv", action="store_true")
    ARGS = ap.parse_args()
    if not torch.cuda.is_available():
        print("cuda_torch.py: no CUDA device; nothing to measure")
        return
    if not ARGS.tsv:
        print(f"PyTorch {torch.__version__} on {torch.cuda.get_device_name()}")
        print(f"{'case':<36} {'value':>14}  unit")
    with torch.no_grad():
        matmul_rows()
        bandwidth_rows()
        conv_rows()
    allocator_rows()


if __name__ == "__main__":
    main()
