#!/usr/bin/env python3
"""Writes fashion-mnist-subset.bin.gz: a class-balanced subset of Fashion-MNIST (MIT licence, Zalando Research)
taken from Debian's dataset-fashion-mnist package. Format (little endian): b"FMNS", int32 train count, int32 test
count, then per image: uint8 label, 784 uint8 pixels (28×28, row major); train images first.
Usage: python3 make_subset.py [per_class_train=100] [per_class_test=30]"""
import gzip
import os
import struct
import sys

SOURCE = "/usr/share/datasets/fashion-mnist"
HERE = os.path.dirname(os.path.abspath(__file__))


def read(kind):
    with gzip.open(os.path.join(SOURCE, f"{kind}-images-idx3-ubyte.gz")) as f:
        _, n, rows, cols = struct.unpack(">IIII", f.read(16))
        images = [f.read(rows * cols) for _ in range(n)]
    with gzip.open(os.path.join(SOURCE, f"{kind}-labels-idx1-ubyte.gz")) as f:
        f.read(8)
        labels = list(f.read(n))
    return images, labels


def take(images, labels, per_class):
    counts = [0] * 10
    out = []
    for image, label in zip(images, labels):
        if counts[label] < per_class:
            counts[label] += 1
            out.append((label, image))
    return out


def main():
    per_train = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    per_test = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    train = take(*read("train"), per_train)
    test = take(*read("t10k"), per_test)
    path = os.path.join(HERE, "fashion-mnist-subset.bin.gz")
    with gzip.GzipFile(path, "wb", mtime=0) as f:
        f.write(b"FMNS" + struct.pack("<ii", len(train), len(test)))
        for label, image in train + test:
            f.write(bytes([label]) + image)
    print(f"{path}: {len(train)} train + {len(test)} test images, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
