"""One training step of torchvision's generic RegNet timed in its three parts (forward with the loss, backward, AdamW): the
PyTorch counterpart of `dotnet run -c Release --project benchmarks/RegNetML.Benchmarks -- --training-step`, same arguments
and CSV row (engine,model,size,batch,threads,format,forward_ms,backward_ms,optimizer_ms,step_ms; medians after 5 warm-up steps).
  /usr/bin/python3 benchmarks/pytorch_training_step.py [--model X002] [--size 64] [--batch 32] [--threads 2] [--steps 25] [--channels-last]
"""
import argparse, statistics, time

import torch
from torchvision.models.regnet import BlockParams, RegNet

parser = argparse.ArgumentParser()
parser.add_argument("--model", default="X002")
parser.add_argument("--size", type=int, default=64)
parser.add_argument("--batch", type=int, default=32)
parser.add_argument("--threads", type=int, default=2)
parser.add_argument("--steps", type=int, default=25)
parser.add_argument("--channels-last", action="store_true")
a = parser.parse_args()
torch.set_num_threads(a.threads)

# The paper's parameters (depth, w0, wa, wm, group width, SE ratio) of the models benchmarked here.
MODELS = {"X002": (13, 24, 36.44, 2.49, 8, None), "X040": (23, 96, 38.65, 2.43, 40, None), "Y016": (27, 48, 20.71, 2.65, 24, 0.25)}
if a.model.upper() not in MODELS:
    raise SystemExit(f"--model must be one of {', '.join(MODELS)}")
depth, w0, wa, wm, group_width, se = MODELS[a.model.upper()]
params = BlockParams.from_init_params(depth=depth, w_0=w0, w_a=wa, w_m=wm, group_width=group_width, se_ratio=se)
torch.manual_seed(3)
model = RegNet(params, num_classes=5)
images = torch.randn(a.batch, 3, a.size, a.size, generator=torch.Generator().manual_seed(1))
if a.channels_last:
    images = images.contiguous(memory_format=torch.channels_last)
labels = torch.randint(0, 5, (a.batch,), generator=torch.Generator().manual_seed(2))
model.train()
optimizer = torch.optim.AdamW(model.parameters(), 1e-3)
times = []
for _ in range(a.steps):
    start = time.perf_counter()
    optimizer.zero_grad()
    loss = torch.nn.functional.cross_entropy(model(images), labels)
    forward = time.perf_counter()
    loss.backward()
    backward = time.perf_counter()
    optimizer.step()
    end = time.perf_counter()
    times.append((forward - start, backward - forward, end - backward, end - start))
parts = [1000 * statistics.median(t[i] for t in times[5:]) for i in range(4)]
fmt = "channels-last" if a.channels_last else "channels-first"
print(f"pytorch-{torch.__version__.split('+')[0]},{a.model},{a.size},{a.batch},{a.threads},{fmt}," + ",".join(f"{p:.1f}" for p in parts))
