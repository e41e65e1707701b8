"""PyTorch twin of recipes/resnet20-cifar10(-regularized).toml, on the same CIFAR-10 JPEG export, for issue #12's
"convkit within 0.3 points of PyTorch on the same files". Run by hand, never by the tests:

    target/torch-venv/bin/python bench/resnet20_cifar10_torch.py [--epochs 40] [--erasing 0.5] [--label-smoothing 0.1]
        [--checkpoint target/torch-twin.pt]

With --checkpoint the whole state (weights, Polyak weights, momentum, best weights, step, both random streams) is
saved after every epoch and a run starts from it if it exists, so a long run survives being stopped; resumed, it
continues exactly as it would have.

Same model (ResNet-20, projection shortcuts, He-normal init), batch 128, SGD momentum 0.9 with coupled weight decay
5e-4 on conv and linear weights only, as convkit (biases and batch-norm parameters undecayed; --decay-all decays
every parameter, PyTorch's default, as the first 40-epoch twin run of 2026-11 did), lr 0.1 with a 1-epoch linear
warm-up from 0.01 then a per-step cosine to 0, Polyak averaging (0.998 per step, batch-norm statistics copied),
per-channel normalisation fitted on the training images, 4-pixel pad-crop and flip, optional random erasing (noise)
and label smoothing. Differences from convkit: its own seeded 45k/5k split (same sizes, not the same images) and
PyTorch's random streams. Prints one line per epoch, then test accuracy on one view and with mirror averaging, for
the best-validation and the Polyak weights. Needs only torch, numpy and Pillow (no torchvision).
"""
import argparse
import copy
import io
import math
import tarfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
TAR = ROOT.parent / "shared/data/cifar10/cifar10-jpg.tar.gz"
CACHE = ROOT / "target/torch-cifar10-jpg.npz"


def load():
    """Decodes the export once into target/ (uint8 NCHW, labels by sorted class folder)."""
    if CACHE.exists():
        z = np.load(CACHE)
        return {k: z[k] for k in z.files}
    out = {}
    with tarfile.open(TAR) as tf:
        members = [m for m in tf.getmembers() if m.isfile() and m.name.endswith(".jpg")]
        classes = sorted({m.name.split("/")[1] for m in members})
        for split in ("train", "test"):
            ms = sorted((m for m in members if m.name.startswith(split + "/")), key=lambda m: m.name)
            x = np.stack([np.asarray(Image.open(io.BytesIO(tf.extractfile(m).read())).convert("RGB")) for m in ms])
            out[f"{split}_x"] = x.transpose(0, 3, 1, 2).copy()
            out[f"{split}_y"] = np.array([classes.index(m.name.split("/")[1]) for m in ms], dtype=np.int64)
    np.savez(CACHE, **out)
    return out


def block(cin, cout, stride):
    main = nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(),
        nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
    short = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
             if cin != cout or stride != 1 else nn.Identity())
    return main, short


class ResNet20(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.mains, self.shorts, cin = nn.ModuleList(), nn.ModuleList(), 16
        for cout, stride in ((16, 1), (32, 2), (64, 2)):
            for i in range(3):
                m, s = block(cin, cout, stride if i == 0 else 1)
                self.mains.append(m), self.shorts.append(s)
                cin = cout
        self.fc = nn.Linear(64, 10)
        for mod in self.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(mod.weight, nonlinearity="relu")

    def forward(self, x):
        x = self.stem(x)
        for m, s in zip(self.mains, self.shorts):
            x = F.relu(m(x) + s(x))
        return self.fc(x.mean((2, 3)))


def augment(xb, rng, erasing):
    """Pad-crop 4 and flip on uint8 NCHW, then random erasing with noise."""
    n, c, h, w = xb.shape
    pad = np.pad(xb, ((0, 0), (0, 0), (4, 4), (4, 4)))
    out = np.empty_like(xb)
    for i in range(n):
        dy, dx = rng.integers(0, 9, 2)
        img = pad[i, :, dy:dy + h, dx:dx + w]
        out[i] = img[:, :, ::-1] if rng.random() < 0.5 else img
        if erasing and rng.random() < erasing:
            for _ in range(10):
                a = h * w * rng.uniform(0.02, 0.33)
                r = math.exp(rng.uniform(math.log(0.3), math.log(3.3)))
                eh, ew = round(math.sqrt(a / r)), round(math.sqrt(a * r))
                if 0 < eh <= h and 0 < ew <= w:
                    y0, x0 = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
                    out[i, :, y0:y0 + eh, x0:x0 + ew] = rng.integers(0, 256, (c, eh, ew))
                    break
    return out


def evaluate(model, x, y, norm, flip=False):
    model.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(x), 500):
            xb = norm(x[i:i + 500])
            p = F.softmax(model(xb).double(), 1)
            if flip:
                p = (p + F.softmax(model(xb.flip(3)).double(), 1)) / 2
            yb = torch.from_numpy(y[i:i + 500])
            correct += (p.argmax(1) == yb).sum().item()
            loss -= p[torch.arange(len(yb)), yb].clamp_min(1e-300).log().sum().item()
    return correct / len(x), loss / len(x)


def same(a):
    """The arguments a resumed run must share with the one that saved (threads may differ)."""
    return {k: v for k, v in vars(a).items() if k not in ("threads", "checkpoint")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--erasing", type=float, default=0.0)
    ap.add_argument("--label-smoothing", type=float, default=0.0)
    ap.add_argument("--decay-all", action="store_true",
                    help="weight decay on every parameter (PyTorch's default), not only conv and linear weights")
    ap.add_argument("--limit", type=int, default=0, help="use only the first N training images (smoke test)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--checkpoint", type=Path, help="save after every epoch; resume from it if it exists")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    d = load()
    perm = np.random.default_rng(a.seed).permutation(len(d["train_y"]))
    if a.limit:
        perm = perm[:a.limit]
    nval = min(5000, len(perm) // 10) if a.limit else 5000
    val, tr = perm[:nval], perm[nval:]
    xtr, ytr, xval, yval = d["train_x"][tr], d["train_y"][tr], d["train_x"][val], d["train_y"][val]
    mean = torch.tensor(xtr.mean((0, 2, 3)) / 255, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor((xtr / 255).std((0, 2, 3)), dtype=torch.float32).view(1, 3, 1, 1)
    norm = lambda xb: (torch.from_numpy(np.ascontiguousarray(xb)).float() / 255 - mean) / std
    model = ResNet20()
    ema = copy.deepcopy(model)
    decayed = lambda p: a.decay_all or p.dim() > 1
    groups = [dict(params=[p for p in model.parameters() if decayed(p)], weight_decay=5e-4),
              dict(params=[p for p in model.parameters() if not decayed(p)], weight_decay=0.0)]
    opt = torch.optim.SGD([g for g in groups if g["params"]], lr=0.1, momentum=0.9)
    steps_per_epoch = math.ceil(len(tr) / 128)
    total, warm = a.epochs * steps_per_epoch, steps_per_epoch
    lr_at = lambda s: 0.1 * (0.1 + 0.9 * s / warm) if s < warm else 0.05 * (1 + math.cos(math.pi * (s - warm) / (total - warm)))
    crit = nn.CrossEntropyLoss(label_smoothing=a.label_smoothing)
    best, best_state, step, t0, start = -1.0, None, 0, time.time(), 1
    if a.checkpoint and a.checkpoint.exists():
        ck = torch.load(a.checkpoint, weights_only=False)
        saved = {"decay_all": True, **ck["args"]}  # checkpoints from before the flag decayed every parameter
        assert saved == same(a), f"{a.checkpoint} was saved with other arguments: {saved}"
        model.load_state_dict(ck["model"]), ema.load_state_dict(ck["ema"]), opt.load_state_dict(ck["opt"])
        best, best_state, step, start = ck["best"], ck["best_state"], ck["step"], ck["epoch"] + 1
        rng.bit_generator.state, t0 = ck["rng"], time.time() - ck["seconds"]
        torch.set_rng_state(ck["torch_rng"])
        print(f"resumed from {a.checkpoint} after epoch {ck['epoch']}", flush=True)
    for epoch in range(start, a.epochs + 1):
        model.train()
        order = rng.permutation(len(tr))
        seen, correct, loss_sum = 0, 0, 0.0
        for b in range(steps_per_epoch):
            idx = order[b * 128:(b + 1) * 128]
            xb, yb = norm(augment(xtr[idx], rng, a.erasing)), torch.from_numpy(ytr[idx])
            for g in opt.param_groups:
                g["lr"] = lr_at(step)
            out = model(xb)
            loss = crit(out, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            with torch.no_grad():
                for pe, pm in zip(ema.parameters(), model.parameters()):
                    pe.mul_(0.998).add_(pm, alpha=0.002)
                for be, bm in zip(ema.buffers(), model.buffers()):
                    be.copy_(bm)
            seen, correct, loss_sum = seen + len(idx), correct + (out.argmax(1) == yb).sum().item(), loss_sum + loss.item() * len(idx)
        va, vl = evaluate(model, xval, yval, norm)
        ea, _ = evaluate(ema, xval, yval, norm)
        if va > best:
            best, best_state = va, copy.deepcopy(model.state_dict())
        print(f"epoch {epoch}/{a.epochs}: train loss {loss_sum / seen:.4f} acc {100 * correct / seen:.2f}% | "
              f"val loss {vl:.4f} acc {100 * va:.2f}% | polyak val acc {100 * ea:.2f}% | {time.time() - t0:.0f} s", flush=True)
        if a.checkpoint:
            ck = {"args": same(a), "epoch": epoch, "step": step, "model": model.state_dict(), "ema": ema.state_dict(),
                  "opt": opt.state_dict(), "best": best, "best_state": best_state, "rng": rng.bit_generator.state,
                  "torch_rng": torch.get_rng_state(), "seconds": time.time() - t0}
            torch.save(ck, a.checkpoint.with_suffix(".tmp"))
            a.checkpoint.with_suffix(".tmp").replace(a.checkpoint)
    model.load_state_dict(best_state)
    for name, m in (("best", model), ("polyak", ema)):
        one, _ = evaluate(m, d["test_x"], d["test_y"], norm)
        two, _ = evaluate(m, d["test_x"], d["test_y"], norm, flip=True)
        print(f"{name}: test {100 * one:.2f}% one view, {100 * two:.2f}% with mirror averaging")


if __name__ == "__main__":
    main()
