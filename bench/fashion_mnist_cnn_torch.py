#!/usr/bin/env python3
"""The same CNN, optimizer, schedule and batch size as examples/fashion_mnist_cnn.cpp,
in PyTorch, for an end-to-end speed comparison on the same machine:

    KILN_NUM_THREADS=2 ./build/bin/fashion_mnist_cnn --epochs 1
    python bench/fashion_mnist_cnn_torch.py --threads 2 --epochs 1

Prints the same per-epoch line (loss, test accuracy, seconds, images/s).
Accuracies differ a little (different random initial weights and shuffles).
"""
import argparse
import gzip
import math
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def load(root, prefix):
    x = torch.from_numpy(read_idx(f"{root}/{prefix}-images-idx3-ubyte.gz").copy()).float().unsqueeze(1)
    y = torch.from_numpy(read_idx(f"{root}/{prefix}-labels-idx1-ubyte.gz").copy()).long()
    return (x / 255.0 - 0.2860) / 0.3530, y


def block(cin, cout, groups):
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.GroupNorm(groups, cout), nn.ReLU()]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=0.05)
    p.add_argument("--warmup", type=int, default=200)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    xtr, ytr = load(a.data, "train")
    xte, yte = load(a.data, "t10k")
    model = nn.Sequential(*block(1, 16, 4), nn.MaxPool2d(2), *block(16, 32, 8), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(32 * 7 * 7, 10))
    decay = [q for n, q in model.named_parameters() if q.ndim > 1 and not n.endswith(".bias")]
    no_decay = [q for n, q in model.named_parameters() if not (q.ndim > 1 and not n.endswith(".bias"))]
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=a.weight_decay), dict(params=no_decay, weight_decay=0.0)],
                            lr=a.lr)
    n = xtr.shape[0]
    total = math.ceil(n / a.batch_size) * a.epochs
    warmup = min(a.warmup, total // 2)

    def factor(s):
        if s < warmup:
            return s / max(1, warmup)
        return max(0.0, 0.5 * (1.0 + math.cos(math.pi * (s - warmup) / max(1, total - warmup))))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    for epoch in range(1, a.epochs + 1):
        t0 = time.perf_counter()
        perm = torch.randperm(n)
        xs, ys = xtr[perm], ytr[perm]
        losses = []
        model.train()
        for i in range(0, n, a.batch_size):
            loss = F.cross_entropy(model(xs[i:i + a.batch_size]), ys[i:i + a.batch_size])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            losses.append(loss.item())
        model.eval()
        with torch.no_grad():
            acc = sum((model(xte[i:i + 1000]).argmax(1) == yte[i:i + 1000]).sum().item()
                      for i in range(0, xte.shape[0], 1000)) / xte.shape[0]
        dt = time.perf_counter() - t0
        print(f"epoch {epoch}  train loss {sum(losses) / len(losses):.4f}  test accuracy {100 * acc:.2f}%  "
              f"({dt:.1f}s, {n / dt:.0f} images/s)", flush=True)


if __name__ == "__main__":
    main()
