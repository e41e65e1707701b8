"""PyTorch's side of bench/winograd_convs.sh: resnet20's three stride-1 3x3 convs, batch 128, bias-free, best of 15
calls each for the forward pass and for forward + backward (input and weight gradients).
Usage: conv_layers_torch.py [THREADS]"""
import sys
import time

import torch

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)


def best(f, reps=15):
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return 1e3 * min(times)


for c, h in [(16, 32), (32, 16), (64, 8)]:
    conv = torch.nn.Conv2d(c, c, 3, padding=1, bias=False)
    x = torch.randn(128, c, h, h, requires_grad=True)
    with torch.no_grad():
        fwd = best(lambda: conv(x))
    g = torch.randn(128, c, h, h)

    def fwd_bwd():
        x.grad, conv.weight.grad = None, None
        conv(x).backward(g)

    both = best(fwd_bwd)
    print(f"{c}->{c} {h}x{h}: forward {fwd:.2f} ms, forward+backward {both:.2f} ms (backward {both - fwd:.2f})")
