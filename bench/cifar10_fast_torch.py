"""PyTorch twin of recipes/cifar10-fast.toml (issue #13): airbench94's network and training written as convkit's
recipe runs it, on the same CIFAR-10 JPEG export, so that both are measured on this machine in one sitting. Run by
hand, never by the tests:

    target/torch-venv/bin/python bench/cifar10_fast_torch.py [--seed 0] [--threads 2] [--epochs 10] [--limit N]

The recipe, as convkit runs it (see the recipe's header for where both differ from airbench94):
- model: a 2x2 conv 3->24 with bias, whitened from the first 5000 training images' 2x2 patch covariance
  (eps 5e-4) and frozen (its bias trains for 3 epochs, then is frozen too); GELU; three groups
  conv3x3 -> maxpool2 -> BN -> GELU -> conv3x3 -> BN -> GELU of widths 64/256/256 with Dirac-initialised convs
  over PyTorch's default init; BN eps 1e-12, momentum 0.4, weight frozen at 1; maxpool 3; linear 256->10
  without bias; scores times 1/9;
- batch 1024 (last partial batch kept), mean cross-entropy with label smoothing 0.2, Nesterov SGD momentum 0.85,
  lr 1.5 on a linear one-cycle per step (0.3 -> 1.5 at 23% -> 0.105), coupled weight decay 1.3304e-3 on conv and
  linear weights only, BN biases at 64x the rate;
- Lookahead from the 4th epoch: every 5th step slow += alpha (fast - slow), fast = slow, with
  alpha = 1 - (1 - 0.2262) (t / T)^3, and fast = slow after each epoch's last step (BN buffers included);
- flips alternating per epoch from a fixed per-image coin, 2-pixel translations with reflect padding;
- 48,000 / 2,000 train / validation split (its own seeded split, same sizes), per-channel normalisation fitted on
  the training images;
- test: one view, and airbench's flip-translate (softmax of image and mirror at 1/4 each, both shifted one pixel
  up-left and down-right with reflect padding at 1/8 each).

Prints one line per epoch, the training wall time (from the first step, validation included, as convkit's
time-to-target counts it) and the first time validation reached 94%, then test accuracies. Needs torch, numpy and
Pillow (the data loader is bench/resnet20_cifar10_torch.py's).
"""
import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from resnet20_cifar10_torch import load  # noqa: E402


class BatchNorm(nn.BatchNorm2d):
    def __init__(self, c):
        super().__init__(c, eps=1e-12, momentum=0.4)
        self.weight.requires_grad = False


def conv(cin, cout):
    c = nn.Conv2d(cin, cout, 3, padding=1, bias=False)
    with torch.no_grad():
        nn.init.dirac_(c.weight[:cin])
    return c


def group(cin, cout):
    return nn.Sequential(conv(cin, cout), nn.MaxPool2d(2), BatchNorm(cout), nn.GELU(),
                         conv(cout, cout), BatchNorm(cout), nn.GELU())


class Mul(nn.Module):
    def forward(self, x):
        return x / 9


def make_net():
    return nn.Sequential(nn.Conv2d(3, 24, 2, bias=True), nn.GELU(), group(24, 64), group(64, 256), group(256, 256),
                         nn.MaxPool2d(3), nn.Flatten(), nn.Linear(256, 10, bias=False), Mul())


def whiten(layer, x, eps=5e-4):
    """Eigenvectors of the 2x2 patch covariance (uncentred), scaled by 1/sqrt(eigenvalue + eps), and negated."""
    c, (h, w) = x.shape[1], layer.weight.shape[2:]
    patches = x.unfold(2, h, 1).unfold(3, w, 1).transpose(1, 3).reshape(-1, c * h * w).double()
    vals, vecs = torch.linalg.eigh(patches.T @ patches / len(patches))
    vals, vecs = vals.flip(0), vecs.T.flip(0)
    f = (vecs / torch.sqrt(vals.clamp_min(0) + eps)[:, None]).reshape(-1, c, h, w).float()
    with torch.no_grad():
        layer.weight.copy_(torch.cat((f, -f)))
    layer.weight.requires_grad = False


def lr_factor(step, total, pct=0.23, div=5.0, final_div=2.857142857142857):
    """convkit's one-cycle with anneal_strategy = "linear" (PyTorch's OneCycleLR), as a fraction of the peak."""
    initial = 1 / div
    last = initial / final_div
    peak = pct * total - 1
    if step <= peak:
        return initial + (1 - initial) * (step / peak if peak > 0 else 1)
    return 1 + (last - 1) * min((step - peak) / (total - 1 - peak), 1)


def shifted(x, dy, dx, pad):
    """x shifted so that output (y, x) reads input (y + dy, x + dx), reflect-padded by pad (|dy|, |dx| <= pad)."""
    p = F.pad(x, (pad,) * 4, mode="reflect")
    h, w = x.shape[-2:]
    return p[..., pad + dy:pad + dy + h, pad + dx:pad + dx + w]


def translate(x, pad, gen):
    """Each image shifted by its own random (dy, dx) in [-pad, pad]^2, reflect padding."""
    n, (h, w) = len(x), x.shape[-2:]
    p = F.pad(x, (pad,) * 4, mode="reflect")
    s = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
    out = torch.empty_like(x)
    for dy in range(2 * pad + 1):
        for dx in range(2 * pad + 1):
            m = (s[:, 0] == dy) & (s[:, 1] == dx)
            out[m] = p[m, :, dy:dy + h, dx:dx + w]
    return out


def probabilities(model, x, tta):
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), 1000):
            xb = x[i:i + 1000]
            sm = lambda v: F.softmax(model(v).double(), 1)
            p = sm(xb)
            if tta:
                p = 0.25 * (p + sm(xb.flip(3)))
                for d in (-1, 1):
                    v = shifted(xb, d, d, 1)
                    p += 0.125 * (sm(v) + sm(v.flip(3)))
            out.append(p)
    return torch.cat(out)


def accuracy(model, x, y, tta=False):
    return (probabilities(model, x, tta).argmax(1) == y).double().mean().item()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--limit", type=int, default=0, help="train on only N images (smoke test)")
    ap.add_argument("--target", type=float, default=0.94, help="report when validation first reaches this")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    gen = torch.Generator().manual_seed(a.seed)
    d = load()
    perm = np.random.default_rng(a.seed).permutation(len(d["train_y"]))
    val, tr = perm[:2000], perm[2000:]
    if a.limit:
        tr = tr[:a.limit]
    xtr = torch.from_numpy(d["train_x"][tr]).float() / 255
    mean, std = xtr.mean((0, 2, 3), keepdim=True), xtr.std((0, 2, 3), keepdim=True)
    norm = lambda x: (x - mean) / std
    xtr, ytr = norm(xtr), torch.from_numpy(d["train_y"][tr])
    xval, yval = norm(torch.from_numpy(d["train_x"][val]).float() / 255), torch.from_numpy(d["train_y"][val])
    xte, yte = norm(torch.from_numpy(d["test_x"]).float() / 255), torch.from_numpy(d["test_y"])

    t0 = time.time()
    model = make_net()
    whiten(model[0], xtr[:5000])
    owner = lambda n: model.get_submodule(n.rsplit(".", 1)[0])
    norm_biases = [p for n, p in model.named_parameters() if isinstance(owner(n), BatchNorm) and p.requires_grad]
    weights = [p for p in model.parameters() if p.requires_grad and p.dim() > 1]
    others = [p for p in model.parameters() if p.requires_grad and p.dim() == 1 and not any(p is q for q in norm_biases)]
    lr, wd = 1.5, 1.3304e-3
    groups = [dict(params=weights, lr=lr, weight_decay=wd, scale=1.0),
              dict(params=others, lr=lr, weight_decay=0.0, scale=1.0),
              dict(params=norm_biases, lr=lr * 64, weight_decay=0.0, scale=64.0)]
    opt = torch.optim.SGD(groups, lr=lr, momentum=0.85, nesterov=True)
    crit = nn.CrossEntropyLoss(label_smoothing=0.2)
    spe = math.ceil(len(tr) / 1024)
    total, step, slow, reached = spe * a.epochs, 0, None, None
    flip_first = torch.rand(len(tr), generator=gen) < 0.5
    for epoch in range(1, a.epochs + 1):
        model.train()
        if epoch == 4:
            model[0].bias.requires_grad_(False)
        if epoch >= 4 and slow is None:
            slow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.dtype == torch.float32}
        mirror = flip_first ^ (epoch % 2 == 0)
        x = torch.where(mirror[:, None, None, None], xtr.flip(3), xtr)
        x = translate(x, 2, gen)
        order = torch.randperm(len(tr), generator=gen)
        seen, correct, loss_sum = 0, 0, 0.0
        for b in range(spe):
            idx = order[b * 1024:(b + 1) * 1024]
            xb, yb = x[idx], ytr[idx]
            f = lr_factor(step, total)
            for g in opt.param_groups:
                g["lr"] = lr * g["scale"] * f
            out = model(xb)
            loss = crit(out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            if slow is not None and (step % 5 == 0 or b == spe - 1):
                alpha = 1 - (1 - 0.2262190625) * (step / total) ** 3 if step % 5 == 0 else None
                with torch.no_grad():
                    for k, v in model.state_dict().items():
                        if k in slow:
                            if alpha is not None:
                                slow[k].lerp_(v, alpha)
                            v.copy_(slow[k])
            seen += len(idx)
            correct += (out.argmax(1) == yb).sum().item()
            loss_sum += loss.item() * len(idx)
        va = accuracy(model, xval, yval)
        el = time.time() - t0
        if reached is None and va >= a.target:
            reached = (el, epoch)
        print(f"epoch {epoch}/{a.epochs}: train loss {loss_sum / seen:.4f} acc {100 * correct / seen:.2f}% | "
              f"val acc {100 * va:.2f}% | {el:.1f} s", flush=True)
    train_s = time.time() - t0
    one, tta = accuracy(model, xte, yte), accuracy(model, xte, yte, tta=True)
    print(f"trained in {train_s:.1f} s; time to {100 * a.target:.0f}% validation: "
          + (f"{reached[0]:.1f} s (epoch {reached[1]})" if reached else "not reached"))
    print(f"test {100 * one:.2f}% one view, {100 * tta:.2f}% flip-translate (seed {a.seed}, {a.threads} threads, "
          f"torch {torch.__version__})")


if __name__ == "__main__":
    main()
