#!/usr/bin/env python3
"""Fashion-MNIST reference run for docs/benchmarks.md (issue 4): the recipe of the RegNetML benchmark in PyTorch.

RegNetX-002 (torchvision's generic RegNet with the X002 stage table, 10 classes) at 64×64: the 28×28 images resized
bilinearly, gray copied to 3 channels, normalised with mean 0.286 / std 0.353; batch 128; AdamW lr 1e-3 with PyTorch's
decoupled weight decay 5e-5; 1 warmup epoch linear from 0.1, then half-cosine per step to 0; random horizontal flip
only; 3 epochs; evaluated on the 10,000 test images. 2 threads. Data: Debian's dataset-fashion-mnist.

Usage: /usr/bin/python3 train_pytorch.py [epochs=3]
"""
import gzip
import math
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torchvision.models.regnet import BlockParams, RegNet

SOURCE = "/usr/share/datasets/fashion-mnist"


def load(kind):
    with gzip.open(f"{SOURCE}/{kind}-images-idx3-ubyte.gz") as f:
        _, n, rows, cols = struct.unpack(">IIII", f.read(16))
        images = np.frombuffer(f.read(), dtype=np.uint8).reshape(n, 1, rows, cols)
    with gzip.open(f"{SOURCE}/{kind}-labels-idx1-ubyte.gz") as f:
        f.read(8)
        labels = np.frombuffer(f.read(), dtype=np.uint8)
    return torch.from_numpy(images.copy()), torch.from_numpy(labels.astype(np.int64))


def prepare(images):
    x = images.float() / 255.0
    x = F.interpolate(x, size=(64, 64), mode="bilinear", align_corners=False)
    x = (x - 0.286) / 0.353
    return x.repeat(1, 3, 1, 1)  # contiguous: augmentation writes into it


def main():
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    torch.set_num_threads(2)
    torch.manual_seed(1)
    start = time.time()
    train_x, train_y = load("train")
    test_x, test_y = load("t10k")
    model = RegNet(BlockParams([1, 1, 4, 7], [24, 56, 152, 368], [8, 8, 8, 8], [1.0] * 4, [2] * 4, None), num_classes=10)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=5e-5)
    batch = 128
    steps_per_epoch = math.ceil(len(train_x) / batch)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_x))
        for step in range(steps_per_epoch):
            t = epoch + step / steps_per_epoch
            lr = 1e-3 * 0.5 * (1 + math.cos(math.pi * t / epochs)) * (0.1 + 0.9 * t if t < 1 else 1.0)
            for group in optimizer.param_groups:
                group["lr"] = lr
            index = order[step * batch:(step + 1) * batch]
            x = prepare(train_x[index])
            flip = torch.rand(len(index)) < 0.5
            x[flip] = x[flip].flip(3)
            optimizer.zero_grad()
            loss = F.cross_entropy(model(x), train_y[index])
            loss.backward()
            optimizer.step()
            if step % 100 == 0:
                print(f"epoch {epoch} step {step}/{steps_per_epoch} loss {loss.item():.4f} lr {lr:.2e} {time.time() - start:.0f} s", flush=True)
    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(test_x), 500):
            correct += (model(prepare(test_x[i:i + 500])).argmax(1) == test_y[i:i + 500]).sum().item()
    print(f"PyTorch {torch.__version__}: test top-1 {correct / len(test_x):.4f}, wall time {time.time() - start:.0f} s")


if __name__ == "__main__":
    main()
