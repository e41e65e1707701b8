"""PyTorch reference for `convkit bench`: the same nets, the same synthetic data, the same timing.

Usage: pytorch_ref.py THREADS BATCH [NET|all] [STEPS] [RUNS]
3 warm-up steps, then STEPS timed steps, median of RUNS runs; training = forward + backward + SGD momentum.
Nets: small, resnet8, resnet20, airbench (3x32x32) and resnet18 (3x224x224), all with 10 classes as `convkit bench`.
Also measures the machine's SGEMM peak (numpy and torch, 2048^3) so both can be reported as a fraction of it.
Prints one JSON object. Run through bench/compare.sh, which installs PyTorch into target/torch-venv.
"""
import json
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn as nn

THREADS = int(sys.argv[1]) if len(sys.argv) > 1 else 2
BATCH = int(sys.argv[2]) if len(sys.argv) > 2 else 128
STEPS = int(sys.argv[4]) if len(sys.argv) > 4 else 20
RUNS = int(sys.argv[5]) if len(sys.argv) > 5 else 5
WARMUP = 3
torch.set_num_threads(THREADS)
torch.manual_seed(0)


def small():
    layers, cin = [], 3
    for cout in (32, 64, 128):
        layers += [nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)]
        cin = cout
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(2048, 10))


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.short is None else self.short(x)))


def resnet8():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        Block(16, 16, 1), Block(16, 32, 2), Block(32, 64, 2),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def cifar_resnet(blocks_per_stage):
    """The CIFAR ResNets of He et al. (resnet20: 3 blocks per stage), 1x1 projection shortcuts as convkit's."""
    layers, cin = [nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
    for stage, cout in enumerate((16, 32, 64)):
        for b in range(blocks_per_stage):
            layers.append(Block(cin, cout, 2 if stage > 0 and b == 0 else 1))
            cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))


def resnet18():
    """torchvision's resnet18 (basic blocks, 64-512 channels) at 224x224, 10 classes."""
    layers = [nn.Conv2d(3, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(3, 2, 1)]
    cin = 64
    for stage, cout in enumerate((64, 128, 256, 512)):
        for b in range(2):
            layers.append(Block(cin, cout, 2 if stage > 0 and b == 0 else 1))
            cin = cout
    return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10))


INPUT = {"resnet18": 224}


def airbench():
    """The cifar10-fast recipe's network (issue #13), as its twin bench/cifar10_fast_torch.py builds it."""
    from cifar10_fast_torch import make_net
    return make_net()


def timed_runs(fn, images):
    """RUNS runs of WARMUP untimed then STEPS timed calls; images per second of each run."""
    rates = []
    for _ in range(RUNS):
        for _ in range(WARMUP):
            fn()
        t = time.perf_counter()
        for _ in range(STEPS):
            fn()
        rates.append(images / (time.perf_counter() - t))
    return rates


def bench(name, net):
    side = INPUT.get(name, 32)
    x = torch.rand(BATCH, 3, side, side) * 2 - 1
    y = torch.randint(0, 10, (BATCH,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()

    def step():
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()

    net.train()
    train = timed_runs(step, BATCH * STEPS)
    net.eval()
    with torch.no_grad():
        infer = timed_runs(lambda: net(x), BATCH * STEPS)
    return {"net": name, "train_img_per_s": statistics.median(train), "infer_img_per_s": statistics.median(infer),
            "train_runs": train, "infer_runs": infer}


def sgemm_peak(n=2048, reps=5):
    a = np.random.rand(n, n).astype(np.float32)
    b = np.random.rand(n, n).astype(np.float32)
    def gflops(mul):
        mul()
        rates = []
        for _ in range(reps):
            t = time.perf_counter()
            mul()
            rates.append(2 * n ** 3 / (time.perf_counter() - t) / 1e9)
        return rates

    ta, tb = torch.from_numpy(a), torch.from_numpy(b)
    np_rates, t_rates = gflops(lambda: a @ b), gflops(lambda: ta @ tb)
    return statistics.median(np_rates), statistics.median(t_rates)


if __name__ == "__main__":
    nets = {"small": small, "resnet8": resnet8, "resnet20": lambda: cifar_resnet(3), "resnet18": resnet18,
            "airbench": airbench}
    only = sys.argv[3] if len(sys.argv) > 3 else "all"
    results = [bench(n, f()) for n, f in nets.items() if n == only or (only == "all" and n in ("small", "resnet8"))]
    np_peak, torch_peak = sgemm_peak()
    print(json.dumps({"torch": torch.__version__, "threads": THREADS, "batch": BATCH,
                      "sgemm_gflops_numpy": np_peak, "sgemm_gflops_torch": torch_peak, "results": results}))
