#!/usr/bin/env python3
"""PyTorch side of the fine-tuning benchmark (docs/benchmarks.md, issue 15): variants (b) and (c) of
benchmarks/RegNetML.FashionMnist/FineTuneBenchmark.cs, written the way a PyTorch user would.

The source model is the timm-layout safetensors file the C# benchmark wrote (RegNetX-002 trained on Fashion-MNIST
classes 0-4), loaded into torchvision's generic RegNet with the X002 stage table (names mapped with tv_to_timm of
tests/fixtures/weights/generate_weight_fixtures.py). Fine-tuning on classes 5-9: the first PER_CLASS training images of
each class, 200 test images per class; 28x28 resized bilinearly to 64x64, gray copied to 3 channels, ImageNet mean/std;
batch 32, AdamW lr 1e-3 with decoupled weight decay 5e-5, half-cosine per step, no augmentation; classes indexed in
order of first appearance (as ML.NET's MapValueToKey does, so the source classifier's rows are reused the same way).
(b) trains everything; (c) sets requires_grad = False on the stem and trunk, keeps them in eval mode and trains the
classifier. Each from the images as one tensor prepared once (the fastest a user can do with data that fits in memory)
and from the PNG files through ImageFolder and a DataLoader (what a user does with an image folder, as RegNetML reads it). Wall time: loading the weights, preparing the images and training (not the evaluation); the first epoch's
time includes loading the weights and preparing the images, as RegNetML's includes reading the weights and its first decoding.

Usage: /usr/bin/python3 finetune_pytorch.py FOLDER [per_class=30] [epochs=6] [threads=2]
"""
import math
import os
import sys
import time

import torch
import torch.nn.functional as F
from torchvision.models.regnet import BlockParams, RegNet

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "fixtures", "weights"))
from train_pytorch import load  # noqa: E402
from generate_weight_fixtures import read_safetensors, tv_to_timm  # noqa: E402

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def select(images, labels, per_class, classes):
    index, taken, order = [], {}, []
    for i, label in enumerate(labels.tolist()):
        if label in classes and taken.get(label, 0) < per_class:
            taken[label] = taken.get(label, 0) + 1
            index.append(i)
            if label not in order:
                order.append(label)
    return images[index], labels[index], order


def prepare(images):
    x = F.interpolate(images.float() / 255.0, size=(64, 64), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    return (x - MEAN) / STD


def build(weights):
    model = RegNet(BlockParams([1, 1, 4, 7], [24, 56, 152, 368], [8, 8, 8, 8], [1.0] * 4, [2] * 4, None), num_classes=5)
    source, _ = read_safetensors(weights)
    state = {key: source[tv_to_timm(key)] for key in model.state_dict() if not key.endswith("num_batches_tracked")}
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert all(k.endswith("num_batches_tracked") for k in missing) and not unexpected, (missing, unexpected)
    return model


def in_memory(train_x, train_y, batch):
    """The images as one tensor, prepared once, in a random order each epoch."""
    x = prepare(train_x)

    def epoch_batches():
        order = torch.randperm(len(x))
        for step in range(math.ceil(len(x) / batch)):
            index = order[step * batch:(step + 1) * batch]
            yield x[index], train_y[index]
    return epoch_batches


def from_files(folder, key, batch):
    """The PNG files the RegNetML benchmark reads, through torchvision's ImageFolder and a DataLoader with one worker
    (RegNetML's WorkerThreads = 1), decoded and resized every epoch as RegNetML's pipeline does."""
    from torchvision import datasets, transforms
    tf = transforms.Compose([transforms.Grayscale(3), transforms.Resize(64), transforms.ToTensor(),
                             transforms.Normalize(MEAN.flatten().tolist(), STD.flatten().tolist())])
    data = datasets.ImageFolder(os.path.join(folder, "target-train"), tf)
    data.target_transform = lambda c: key[int(data.classes[c])]
    loader = torch.utils.data.DataLoader(data, batch_size=batch, shuffle=True, num_workers=1)
    return lambda: iter(loader)


def run(variant, weights, make_batches, steps, test_x, test_y, epochs):
    torch.manual_seed(1)
    start = time.time()
    model = build(weights)
    epoch_batches = make_batches()
    if variant == "c":
        frozen = [model.stem, model.trunk_output]
        for module in frozen:
            for p in module.parameters():
                p.requires_grad = False
        parameters = model.fc.parameters()
    else:
        frozen, parameters = [], model.parameters()
    optimizer = torch.optim.AdamW(parameters, lr=1e-3, weight_decay=5e-5)
    epoch_times, last = [], start
    for epoch in range(epochs):
        model.train()
        for module in frozen:
            module.eval()
        for step, (x, y) in enumerate(epoch_batches()):
            lr = 1e-3 * 0.5 * (1 + math.cos(math.pi * (epoch * steps + step) / (epochs * steps)))
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad()
            F.cross_entropy(model(x), y).backward()
            optimizer.step()
        epoch_times.append(time.time() - last)
        last = time.time()
    seconds = time.time() - start
    model.eval()
    with torch.no_grad():
        correct = sum((model(prepare(test_x[i:i + 500])).argmax(1) == test_y[i:i + 500]).sum().item() for i in range(0, len(test_x), 500))
    return correct / len(test_x), seconds, epoch_times


def main():
    folder = sys.argv[1]
    per_class = int(sys.argv[2]) if len(sys.argv) > 2 else 30
    epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 6
    torch.set_num_threads(int(sys.argv[4]) if len(sys.argv) > 4 else 2)
    weights = os.path.join(folder, "weights", "regnetx_002.pycls_in1k.safetensors")
    train_x, train_y = load("train")
    test_x, test_y = load("t10k")
    classes = {5, 6, 7, 8, 9}
    train_x, train_y, order = select(train_x, train_y, per_class, classes)
    test_x, test_y, _ = select(test_x, test_y, 200, classes)
    key = {label: i for i, label in enumerate(order)}
    train_y = torch.tensor([key[v] for v in train_y.tolist()])
    test_y = torch.tensor([key[v] for v in test_y.tolist()])
    steps = math.ceil(len(train_x) / 32)
    tensors = lambda: in_memory(train_x, train_y, 32)
    files = lambda: from_files(folder, key, 32)
    for variant, name, batches in (("b", "(b) from the source, end to end", tensors), ("c", "(c) frozen trunk", tensors),
                                   ("b", "(b) end to end, PNG files (ImageFolder)", files), ("c", "(c) frozen trunk, PNG files (ImageFolder)", files)):
        accuracy, seconds, times = run(variant, weights, batches, steps, test_x, test_y, epochs)
        later = sum(times[1:]) / max(1, len(times) - 1)
        print(f"| PyTorch {torch.__version__} {name} | {accuracy:.1%} | {seconds:.1f} s | {times[0]:.2f} s | {later:.3f} s |", flush=True)


if __name__ == "__main__":
    main()
