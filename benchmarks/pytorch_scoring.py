#!/usr/bin/python3
"""PyTorch eager scoring throughput for the RegNet benchmark in docs/benchmarks.md ("Scoring").

Builds the same networks as Microsoft.ML.RegNet with torchvision's RegNet class (stage tables from
/work/shared/reference/regnet_models.md), random weights, eval() + no_grad(), and reports images/s.
Run with Debian's interpreter (the first python3 on PATH may lack torch):

    /usr/bin/python3 benchmarks/pytorch_scoring.py --threads 2 --models X002,Y016 --batches 1,32 --size 224
"""
import argparse
import time

import torch
from torchvision.models.regnet import BlockParams, RegNet

# name: (stage depths, stage widths, stage group widths, SE ratio or None)
SPECS = {
    "X002": ([1, 1, 4, 7], [24, 56, 152, 368], [8, 8, 8, 8], None),
    "Y002": ([1, 1, 4, 7], [24, 56, 152, 368], [8, 8, 8, 8], 0.25),
    "Y016": ([2, 6, 17, 2], [48, 120, 336, 888], [24, 24, 24, 24], 0.25),
    "X016": ([2, 4, 10, 2], [72, 168, 408, 912], [24, 24, 24, 24], None),
}


def build(name):
    depths, widths, groups, se = SPECS[name]
    params = BlockParams(depths, widths, groups, [1.0] * 4, [2] * 4, se)
    return RegNet(params, num_classes=1000).eval()


def measure(model, batch, size, min_iters, min_seconds):
    x = torch.randn(batch, 3, size, size)
    with torch.no_grad():
        # Warm-up as in the .NET benchmark: at least 5 calls and half the measuring time.
        warm, i = time.perf_counter(), 0
        while i < 5 or time.perf_counter() - warm < min_seconds / 2:
            model(x)
            i += 1
        iters, start = 0, time.perf_counter()
        while iters < min_iters or time.perf_counter() - start < min_seconds:
            model(x)
            iters += 1
        elapsed = time.perf_counter() - start
    return batch * iters / elapsed, elapsed / iters * 1000


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", default="X002,Y016")
    p.add_argument("--batches", default="1,32")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--min-iters", type=int, default=5)
    p.add_argument("--min-seconds", type=float, default=5.0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.set_num_interop_threads(1)
    print(f"# PyTorch {torch.__version__} eager, {torch.get_num_threads()} threads, {a.size}x{a.size}")
    print("engine,model,batch,images_per_s,ms_per_batch")
    for name in a.models.split(","):
        model = build(name)
        for batch in (int(b) for b in a.batches.split(",")):
            ips, ms = measure(model, batch, a.size, a.min_iters, a.min_seconds)
            print(f"pytorch-eager,{name},{batch},{ips:.1f},{ms:.1f}", flush=True)


if __name__ == "__main__":
    main()
