#!/usr/bin/env python3
"""HF transformers' BitForImageClassification (google/bit-50's config, random
weights) on CPU: the same training step and inference as bench/bit_bench.cpp.

    python bench/bit_torch.py [--threads N] [--batch 8] [--size 224] [--steps 5] [--tsv]
"""
import argparse
import statistics
import time

import torch
from transformers import BitConfig, BitForImageClassification


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--tsv", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    config = BitConfig(global_padding="SAME", embedding_dynamic_padding=True, num_labels=1000)
    model = BitForImageClassification(config)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(a.batch, 3, a.size, a.size)
    y = torch.randint(0, 1000, (a.batch,))

    def train_step():
        out = model(x, labels=y)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def infer():
        with torch.no_grad():
            return model(x).logits

    def timed(f):
        f()
        samples = []
        for _ in range(a.steps):
            t0 = time.perf_counter()
            f()
            samples.append(time.perf_counter() - t0)
        return a.batch / statistics.median_high(samples)

    model.train()
    train_ips = timed(train_step)
    model.eval()
    infer_ips = timed(infer)
    if a.tsv:
        print(f"bit\ttrain_step\ttorch\t{train_ips:.6g}\nbit\tinference\ttorch\t{infer_ips:.6g}")
    else:
        print(f"PyTorch {torch.__version__} BiT-R50x1 {a.size}x{a.size} batch {a.batch}, {a.threads} threads: "
              f"train step {train_ips:.2f} images/s, inference {infer_ips:.2f} images/s")


if __name__ == "__main__":
    main()
