"""PyTorch's MobileNetV2 training step and inference at 160x160, timed as `convkit bench --net mobilenetv2_keras`
(3 warm-up steps, STEPS timed, median of RUNS; SGD momentum; synthetic input). torchvision's architecture, written
out here (the venv has no torchvision); nn.Conv2d with groups=C is PyTorch's depthwise path (mkldnn on CPU).
Usage: target/torch-venv/bin/python bench/mobilenetv2_torch.py [THREADS] [BATCH]   (prints one JSON line)
"""
import json
import statistics
import sys
import time

import torch
import torch.nn as nn

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
BATCH = int(sys.argv[2]) if len(sys.argv) > 2 else 16
STEPS, RUNS, WARMUP = int(sys.argv[3]) if len(sys.argv) > 3 else 10, 3, 3
torch.set_num_threads(THREADS)
torch.manual_seed(0)


def cba(cin, cout, k, stride=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    return layers + ([nn.ReLU6(inplace=True)] if act else [])


class Inverted(nn.Module):
    def __init__(self, cin, cout, stride, t):
        super().__init__()
        hidden = cin * t
        layers = cba(cin, hidden, 1) if t != 1 else []
        layers += cba(hidden, hidden, 3, stride, hidden) + cba(hidden, cout, 1, act=False)
        self.body = nn.Sequential(*layers)
        self.res = stride == 1 and cin == cout

    def forward(self, x):
        return x + self.body(x) if self.res else self.body(x)


def mobilenetv2(classes=10):
    layers, cin = cba(3, 32, 3, 2), 32
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1)]:
        for i in range(n):
            layers.append(Inverted(cin, c, s if i == 0 else 1, t))
            cin = c
    layers += cba(cin, 1280, 1) + [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(0.3), nn.Linear(1280, classes)]
    return nn.Sequential(*layers)


def timed(fn):
    rates = []
    for _ in range(RUNS):
        for _ in range(WARMUP):
            fn()
        t = time.perf_counter()
        for _ in range(STEPS):
            fn()
        rates.append(BATCH * STEPS / (time.perf_counter() - t))
    return statistics.median(rates)


model = mobilenetv2()
x = torch.rand(BATCH, 3, 160, 160) * 2 - 1
y = torch.randint(0, 10, (BATCH,))
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def step():
    opt.zero_grad(set_to_none=True)
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()


model.train()
train = timed(step)
model.eval()
with torch.no_grad():
    infer = timed(lambda: model(x))
print(json.dumps({"net": "mobilenetv2", "batch": BATCH, "threads": THREADS, "torch": torch.__version__,
                  "train_img_per_s": train, "infer_img_per_s": infer}))
