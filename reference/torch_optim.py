"""Reference numbers for convkit's optimizer, schedule and L-BFGS tests, from PyTorch (float64).

Run once: target/torch-venv/bin/python reference/torch_optim.py > reference/torch_optim.json
The JSON carries its own inputs (start point, gradient function, data), so the Rust tests need nothing else.
"""
import json
import math

import torch

torch.set_default_dtype(torch.float64)

# A 6-parameter problem whose gradient depends on x (so state and decay matter) plus fixed "noise":
# g(x, t) = a * x - b + noise[t].
x0 = [0.5, -1.2, 2.0, 0.05, -0.3, 1.0]
a = [1.0, 10.0, 0.1, 3.0, 0.5, 30.0]
b = [0.2, -0.5, 0.1, 1.0, 0.0, 0.3]
steps = 12
gen = torch.Generator().manual_seed(0)
noise = (0.3 * torch.randn(steps, 6, generator=gen)).tolist()


def run(make):
    x = torch.tensor(x0, requires_grad=True)
    opt = make([x])
    out = []
    for t in range(steps):
        opt.zero_grad()
        x.grad = torch.tensor(a) * x.detach() - torch.tensor(b) + torch.tensor(noise[t])
        opt.step()
        out.append(x.detach().tolist())
    return out


O = torch.optim
optimizers = {
    "sgd": dict(lr=0.05, f=lambda p: O.SGD(p, lr=0.05)),
    "sgd_wd": dict(lr=0.05, weight_decay=0.1, f=lambda p: O.SGD(p, lr=0.05, weight_decay=0.1)),
    "momentum": dict(lr=0.02, momentum=0.9, f=lambda p: O.SGD(p, lr=0.02, momentum=0.9)),
    "momentum_wd": dict(lr=0.02, momentum=0.8, weight_decay=0.05,
                        f=lambda p: O.SGD(p, lr=0.02, momentum=0.8, weight_decay=0.05)),
    "nesterov": dict(lr=0.02, momentum=0.9, f=lambda p: O.SGD(p, lr=0.02, momentum=0.9, nesterov=True)),
    "nesterov_wd": dict(lr=0.02, momentum=0.9, weight_decay=0.05,
                        f=lambda p: O.SGD(p, lr=0.02, momentum=0.9, nesterov=True, weight_decay=0.05)),
    "adagrad": dict(lr=0.3, f=lambda p: O.Adagrad(p, lr=0.3)),
    "rmsprop": dict(lr=0.01, decay_rate=0.99, f=lambda p: O.RMSprop(p, lr=0.01, alpha=0.99)),
    "rmsprop_09": dict(lr=0.01, decay_rate=0.9, weight_decay=0.1,
                       f=lambda p: O.RMSprop(p, lr=0.01, alpha=0.9, weight_decay=0.1)),
    "adam": dict(lr=0.05, f=lambda p: O.Adam(p, lr=0.05)),
    "adam_wd": dict(lr=0.05, beta1=0.8, beta2=0.99, weight_decay=0.1,
                    f=lambda p: O.Adam(p, lr=0.05, betas=(0.8, 0.99), weight_decay=0.1)),
    "adamw": dict(lr=0.05, weight_decay=0.1, f=lambda p: O.AdamW(p, lr=0.05, weight_decay=0.1)),
}
opt_out = {}
for name, spec in optimizers.items():
    make = spec.pop("f")
    opt_out[name] = dict(config=spec, trajectory=run(make))


# Schedules: the rate used at each of `n` epochs (scheduler.step() once per epoch) or steps.
def lrs(make, n, metric=None):
    p = [torch.zeros(1, requires_grad=True)]
    opt = O.SGD(p, lr=0.1)
    s = make(opt)
    out = []
    for i in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        if metric is None:
            s.step()
        else:
            s.step(metric[i])
    return out


S = O.lr_scheduler
plateau_metric = [0.5, 0.6, 0.6, 0.59, 0.61, 0.6, 0.6, 0.6, 0.7, 0.7, 0.7, 0.7, 0.7, 0.7]
schedules = {
    "step_every": dict(spec="step:every=3,gamma=0.5", n=12, lr=lrs(lambda o: S.StepLR(o, 3, 0.5), 12)),
    "step_milestones": dict(spec="step:milestones=[2,5],gamma=0.1", n=8,
                            lr=lrs(lambda o: S.MultiStepLR(o, [2, 5], 0.1), 8)),
    "exponential": dict(spec="exponential:k=%r" % (-math.log(0.9)), n=10,
                        lr=lrs(lambda o: S.ExponentialLR(o, 0.9), 10)),
    "cosine": dict(spec="cosine:min_lr=0.001", n=10, epochs=10,
                   lr=lrs(lambda o: S.CosineAnnealingLR(o, 10, eta_min=0.001), 10)),
    "sgdr": dict(spec="sgdr:period=3,mult=2,min_lr=0.01", n=22,
                 lr=lrs(lambda o: S.CosineAnnealingWarmRestarts(o, 3, 2, eta_min=0.01), 22)),
    "sgdr_flat": dict(spec="sgdr:period=4", n=12, lr=lrs(lambda o: S.CosineAnnealingWarmRestarts(o, 4), 12)),
    "one_cycle": dict(spec="one-cycle", n=50, epochs=50,
                      lr=lrs(lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=50), 50)),
    # airbench's triangle: 0.2 of the peak at the start, the peak at 23%, 0.07 at the end.
    "one_cycle_linear": dict(spec="one-cycle:anneal_strategy='linear',pct_start=0.23,div_factor=5,"
                                  "final_div_factor=2.857142857142857", n=40, epochs=40,
                             lr=lrs(lambda o: S.OneCycleLR(o, max_lr=0.1, total_steps=40, pct_start=0.23,
                                                           anneal_strategy="linear", div_factor=5,
                                                           final_div_factor=2.857142857142857), 40)),
    "warmup_cosine": dict(spec="cosine", warmup_epochs=2, warmup_start=0.1, n=10, epochs=10,
                          lr=lrs(lambda o: S.SequentialLR(o, [S.LinearLR(o, 0.1, total_iters=2),
                                                              S.CosineAnnealingLR(o, 8)], milestones=[2]), 10)),
    "plateau": dict(spec="plateau:factor=0.5,patience=1", n=14, metric=plateau_metric,
                    lr=lrs(lambda o: S.ReduceLROnPlateau(o, mode="max", factor=0.5, patience=1), 14, plateau_metric)),
}

# L-BFGS on a small full-batch L2-regularised logistic regression.
gen = torch.Generator().manual_seed(1)
n, d = 64, 5
X = torch.randn(n, d, generator=gen)
w_true = torch.tensor([1.5, -2.0, 0.5, 0.0, 1.0])
y = (torch.rand(n, generator=gen) < torch.sigmoid(X @ w_true + 0.3)).double()
lam = 0.01
w = torch.zeros(d + 1, requires_grad=True)


def loss_fn():
    z = X @ w[:d] + w[d]
    return torch.nn.functional.binary_cross_entropy_with_logits(z, y) + 0.5 * lam * (w[:d] ** 2).sum()


opt = O.LBFGS([w], lr=1, max_iter=500, history_size=10, line_search_fn="strong_wolfe",
              tolerance_grad=1e-12, tolerance_change=1e-15)


def closure():
    opt.zero_grad()
    l = loss_fn()
    l.backward()
    return l


opt.step(closure)
lbfgs = dict(x=X.tolist(), y=y.tolist(), l2=lam, w=w.detach().tolist(), loss=loss_fn().item(),
             iterations=opt.state[opt._params[0]]["n_iter"])

print(json.dumps(dict(torch=torch.__version__,
                      problem=dict(x0=x0, a=a, b=b, noise=noise),
                      optimizers=opt_out, schedules=schedules, lbfgs=lbfgs), indent=1))
