"""PyTorch parity references for convkit's layers, losses and whole models (llm.c style).

Run by hand, never by the tests:  target/torch-venv/bin/python reference/torch_layers.py
Writes reference/torch_layers.safetensors (float64). tests/torch_parity.rs loads it and compares convkit's forward
and backward passes with PyTorch's to 1e-5 relative.

Layers: for every layer kind and configuration convkit has, the input `x`, the parameters, an upstream gradient
`dy`, and PyTorch's output `y`, input gradient `dx`, parameter gradients and (batch norm in training mode) the
updated running statistics. The case list, with each layer's configuration, is the file's metadata `cases`.

Models: lenet5, resnet20 and mobilenetv2 written with torch.nn.functional under convkit's parameter names, so no
name map is needed. Their weights come from a formula both sides compute (`formula` below, `formula` in the Rust
test), so the file holds only the input, logits, loss, running statistics and gradients: in full up to 4096
elements per tensor, beyond that every k-th element plus the whole tensor's L2 norm.

Conventions where PyTorch offers a choice (the README's parity section lists them):
- batch norm: eps 1e-5, momentum 0.1 (weight of the new batch), running variance updated with the unbiased
  (n/(n-1)) batch variance, normalisation with the biased one;
- dropout: convkit's `p` is the keep probability (PyTorch's p = 1 - ours); inverted scaling, identity at eval;
- LRN: PyTorch's alpha/n inside the sum's coefficient, window [c - n/2, c + (n-1)/2], zero padded;
- avg pool: padding counts in the mean (count_include_pad=True); max pool: -inf padding, ceil_mode as asked;
- SVM loss: convkit's is the lecture's sum over wrong classes, PyTorch's multi_margin_loss divides by C;
- cross-entropy: the mean over the batch;
- linear weight [out, in]; conv weight [out, in/groups, k, k].
"""

import json
import math
import os

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.numpy import save_file

torch.set_default_dtype(torch.float64)
torch.manual_seed(0)
OUT = os.path.join(os.path.dirname(__file__), "torch_layers.safetensors")
T = {}  # name -> numpy array
CASES = []


def put(key, t):
    T[key] = t.detach().double().contiguous().numpy().copy()


# ---------------------------------------------------------------- layers
def layer_case(name, spec, x_shape, fn, params=None, buffers=None, train=True):
    """fn(x, params, buffers) -> y. Records x, dy, y, dx, params, their grads, buffers before and after."""
    x = torch.randn(*x_shape, requires_grad=True)
    params = {k: v.clone().requires_grad_(True) for k, v in (params or {}).items()}
    buffers = {k: v.clone() for k, v in (buffers or {}).items()}
    for k, v in buffers.items():
        put(f"{name}.buffer_in.{k}", v)
    y = fn(x, params, buffers)
    dy = torch.randn(*y.shape)
    y.backward(dy)
    put(f"{name}.x", x)
    put(f"{name}.dy", dy)
    put(f"{name}.y", y)
    put(f"{name}.dx", x.grad)
    for k, v in params.items():
        put(f"{name}.param.{k}", v)
        put(f"{name}.grad.{k}", v.grad)
    for k, v in buffers.items():
        put(f"{name}.buffer.{k}", v)
    CASES.append(dict(name=name, train=train, **spec))


def conv_case(name, cin, cout, k, stride=1, padding=0, groups=1, bias=True, relu=False, hw=7):
    p = {"weight": torch.randn(cout, cin // groups, k, k) / math.sqrt(cin // groups * k * k)}
    if bias:
        p["bias"] = torch.randn(cout) * 0.1

    def fn(x, p, b):
        y = F.conv2d(x, p["weight"], p.get("bias"), stride=stride, padding=padding, groups=groups)
        return F.relu(y) if relu else y

    spec = dict(kind="conv", cin=cin, cout=cout, k=k, stride=stride, padding=padding, groups=groups, bias=bias, relu=relu)
    layer_case(name, spec, (3, cin, hw, hw), fn, p)


def bn_case(name, c, shape, train, relu=False):
    p = {"weight": 1 + 0.1 * torch.randn(c), "bias": 0.1 * torch.randn(c)}
    b = {"running_mean": 0.1 * torch.randn(c), "running_var": 1 + 0.3 * torch.rand(c)}

    def fn(x, p, b):
        y = F.batch_norm(x, b["running_mean"], b["running_var"], p["weight"], p["bias"], training=train, momentum=0.1, eps=1e-5)
        return F.relu(y) if relu else y

    layer_case(name, dict(kind="batchnorm", c=c, relu=relu), shape, fn, p, b, train)


def build_layer_cases():
    conv_case("conv_s2_p1", 4, 6, 3, stride=2, padding=1)
    conv_case("conv_groups2", 4, 6, 3, padding=1, groups=2)
    conv_case("conv_depthwise", 4, 4, 3, padding=1, groups=4, bias=False)
    conv_case("conv_depthwise_s2", 6, 6, 3, stride=2, padding=1, groups=6, bias=False, hw=8)
    conv_case("conv_1x1_nobias", 4, 8, 1, bias=False)
    conv_case("conv_k5_p2_relu", 3, 5, 5, padding=2, relu=True)
    conv_case("conv_k11_s4_p2", 3, 4, 11, stride=4, padding=2, hw=23)
    w = torch.randn(5, 10) / math.sqrt(10)
    layer_case("linear", dict(kind="linear", fin=10, fout=5), (4, 10), lambda x, p, b: F.linear(x, p["weight"], p["bias"]),
               {"weight": w, "bias": 0.1 * torch.randn(5)})
    bn_case("bn2d_train", 4, (3, 4, 5, 5), True)
    bn_case("bn2d_relu_train", 4, (3, 4, 5, 5), True, relu=True)
    bn_case("bn1d_train", 10, (6, 10), True)
    bn_case("bn2d_eval", 4, (3, 4, 5, 5), False)
    bn_case("bn1d_eval", 10, (6, 10), False)
    for name, k, s, p, ceil, hw in [("maxpool_k2_s2", 2, 2, 0, False, 8), ("maxpool_k3_s2_p1", 3, 2, 1, False, 7),
                                     ("maxpool_k3_s2_ceil", 3, 2, 0, True, 8), ("maxpool_k3_s1_p1", 3, 1, 1, False, 6)]:
        layer_case(name, dict(kind="maxpool", k=k, stride=s, padding=p, ceil=ceil), (2, 3, hw, hw),
                   lambda x, _p, _b, k=k, s=s, p=p, ceil=ceil: F.max_pool2d(x, k, s, p, ceil_mode=ceil))
    for name, k, s, p in [("avgpool_k2_s2", 2, 2, 0), ("avgpool_k3_s1_p1", 3, 1, 1), ("avgpool_k3_s2", 3, 2, 0)]:
        layer_case(name, dict(kind="avgpool", k=k, stride=s, padding=p), (2, 3, 7, 7),
                   lambda x, _p, _b, k=k, s=s, p=p: F.avg_pool2d(x, k, s, p, count_include_pad=True))
    layer_case("global_avgpool", dict(kind="global_avgpool"), (2, 3, 5, 4), lambda x, p, b: x.mean(dim=(2, 3)))
    for name, n, alpha, beta, k in [("lrn_n3", 3, 0.5, 0.75, 1.0), ("lrn_alexnet", 5, 1e-4, 0.75, 2.0), ("lrn_n4", 4, 0.3, 0.6, 1.5)]:
        layer_case(name, dict(kind="lrn", n=n, alpha=alpha, beta=beta, k=k), (2, 7, 4, 4),
                   lambda x, _p, _b, n=n, a=alpha, bt=beta, k=k: F.local_response_norm(x, n, a, bt, k))
    acts = {
        "relu": F.relu,
        "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
        "elu": lambda x: F.elu(x, 1.0),
        "sigmoid": torch.sigmoid,
        "tanh": torch.tanh,
        "relu6": F.relu6,
    }
    for name, f in acts.items():
        layer_case(name, dict(kind=name), (2, 3, 4, 4), lambda x, _p, _b, f=f: f(x * 4))  # spread over the kinks
        T[f"{name}.x"] = T[f"{name}.x"] * 4  # store the input the layer saw; dx is w.r.t. the unscaled x
        T[f"{name}.dx"] = T[f"{name}.dx"] / 4
    layer_case("maxout_k2", dict(kind="maxout", pieces=2), (2, 6, 3, 3),
               lambda x, p, b: x.view(2, 3, 2, 3, 3).max(dim=2).values)
    layer_case("maxout_k3_fc", dict(kind="maxout", pieces=3), (4, 9), lambda x, p, b: x.view(4, 3, 3).max(dim=2).values)
    layer_case("dropout_eval", dict(kind="dropout", p_keep=0.5), (2, 3, 4, 4),
               lambda x, p, b: F.dropout(x, p=0.5, training=False), train=False)
    layer_case("flatten", dict(kind="flatten"), (2, 3, 4, 4), lambda x, p, b: x.flatten(1))


def build_loss_cases():
    for name, labels in [("softmax_ce", [0, 3, 6, 2, 5]), ("svm", [1, 1, 4, 6, 0])]:
        s = (2 * torch.randn(5, 7)).requires_grad_(True)
        y = torch.tensor(labels)
        loss = F.cross_entropy(s, y) if name == "softmax_ce" else F.multi_margin_loss(s, y, margin=1.0) * 7
        loss.backward()
        put(f"{name}.scores", s)
        put(f"{name}.labels", y.double())
        put(f"{name}.loss", loss.reshape(1))
        put(f"{name}.dscores", s.grad)
        CASES.append(dict(name=name, kind="loss"))


# ---------------------------------------------------------------- models
def formula(name, shape):
    """Deterministic weights from the parameter's name and shape (the Rust test computes the same)."""
    n = int(np.prod(shape))
    k = sum(name.encode()) % 97
    s = np.sin(0.7 * np.arange(n) + 0.3 * k + 0.1)
    if len(shape) >= 2:
        v = s / math.sqrt(n / shape[0])
    elif name.endswith("running_var"):
        v = 1 + 0.5 * np.abs(s)
    elif name.endswith("weight"):  # batch-norm gamma
        v = 1 + 0.1 * s
    else:  # biases, beta, running mean
        v = 0.1 * s
    return torch.tensor(v.reshape(shape))


class Params:
    """Parameters created on first use under convkit's names, from `formula`."""

    def __init__(self):
        self.p, self.b = {}, {}

    def param(self, name, shape):
        if name not in self.p:
            self.p[name] = formula(name, shape).requires_grad_(True)
        return self.p[name]

    def buf(self, name, shape):
        if name not in self.b:
            self.b[name] = formula(name, shape)
        return self.b[name]

    def conv(self, x, name, cout, k, stride=1, padding=0, groups=1, bias=True):
        w = self.param(f"{name}.weight", (cout, x.shape[1] // groups, k, k))
        b = self.param(f"{name}.bias", (cout,)) if bias else None
        return F.conv2d(x, w, b, stride=stride, padding=padding, groups=groups)

    def bn(self, x, name):
        c = x.shape[1]
        rm, rv = self.buf(f"{name}.running_mean", (c,)), self.buf(f"{name}.running_var", (c,))
        w, b = self.param(f"{name}.weight", (c,)), self.param(f"{name}.bias", (c,))
        return F.batch_norm(x, rm, rv, w, b, training=True, momentum=0.1, eps=1e-5)

    def fc(self, x, name, fout):
        return F.linear(x, self.param(f"{name}.weight", (fout, x.shape[1])), self.param(f"{name}.bias", (fout,)))


def lenet5(P, x):
    x = F.max_pool2d(F.relu(P.conv(x, "conv1", 6, 5, padding=2)), 2, 2)
    x = F.max_pool2d(F.relu(P.conv(x, "conv2", 16, 5)), 2, 2).flatten(1)
    x = F.relu(P.fc(x, "fc1", 120))
    x = F.relu(P.fc(x, "fc2", 84))
    return P.fc(x, "fc3", 10)


def resnet20(P, x):
    x = F.relu(P.bn(P.conv(x, "conv1", 16, 3, padding=1, bias=False), "bn1"))
    cin = 16
    for si, (cout, stride) in enumerate([(16, 1), (32, 2), (64, 2)]):
        for b in range(3):
            s, name = (stride if b == 0 else 1), f"stage{si + 1}.block{b + 1}"
            h = F.relu(P.bn(P.conv(x, f"{name}.conv1", cout, 3, stride=s, padding=1, bias=False), f"{name}.bn1"))
            h = P.bn(P.conv(h, f"{name}.conv2", cout, 3, padding=1, bias=False), f"{name}.bn2")
            if cin != cout or s != 1:
                x = P.bn(P.conv(x, f"{name}.shortcut.conv", cout, 1, stride=s, bias=False), f"{name}.shortcut.bn")
            x, cin = F.relu(h + x), cout
    return P.fc(x.mean(dim=(2, 3)), "fc", 10)


def mobilenetv2(P, x):
    def cba(x, name, cout, k, stride=1, groups=1, act=True):
        y = P.bn(P.conv(x, f"{name}.conv", cout, k, stride=stride, padding=k // 2, groups=groups, bias=False), f"{name}.bn")
        return F.relu6(y) if act else y

    x = cba(x, "conv1", 32, 3, stride=2)
    cin, k = 32, 0
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            k += 1
            stride, name, hidden = (s if i == 0 else 1), f"block{k}", cin * t
            h = cba(x, f"{name}.expand", hidden, 1) if t != 1 else x
            h = cba(h, f"{name}.dw", hidden, 3, stride=stride, groups=hidden)
            h = cba(h, f"{name}.project", c, 1, act=False)
            x = x + h if stride == 1 and cin == c else h
            cin = c
    x = cba(x, "conv2", 1280, 1)
    # convkit's dropout (keep 0.8) is left out on both sides: its mask is random; its scaling is a layer case.
    return P.fc(x.mean(dim=(2, 3)), "fc", 10)


def sample(a, cap=4096):
    """The whole tensor when small, else every k-th element (flattened)."""
    flat = a.reshape(-1)
    step = max(1, -(-flat.size // cap))
    return flat[::step]


# Input sizes: MobileNetV2 at 96x96 (3x3 at its end). At 64x64 its last batch norms normalise over 8 values
# and PyTorch's own gradients move by up to 3e-6 (relative) when only the batch order is swapped; at 96x96 by
# 4e-7, well inside the tests' 1e-5.
def model_case(name, fn, x_shape):
    P = Params()
    n = int(np.prod(x_shape))
    x = torch.tensor(np.sin(0.05 * np.arange(n) + 0.2).reshape(x_shape))
    labels = torch.tensor([3, 7])
    logits = fn(P, x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    put(f"{name}.x", x)
    put(f"{name}.labels", labels.double())
    put(f"{name}.logits", logits)
    put(f"{name}.loss", loss.reshape(1))
    for k, v in P.p.items():
        g = v.grad.double().numpy()
        T[f"{name}.grad.{k}"] = sample(g).copy()
        T[f"{name}.gradnorm.{k}"] = np.array([np.linalg.norm(g)])
    for k, v in P.b.items():
        T[f"{name}.buffer.{k}"] = sample(v.numpy()).copy()
    CASES.append(dict(name=name, kind="model", params=len(P.p), buffers=len(P.b), x=list(x_shape)))


if __name__ == "__main__":
    build_layer_cases()
    build_loss_cases()
    model_case("lenet5", lenet5, (2, 1, 28, 28))
    model_case("resnet20", resnet20, (2, 3, 32, 32))
    model_case("mobilenetv2", mobilenetv2, (2, 3, 96, 96))
    save_file(T, OUT, metadata={"cases": json.dumps(CASES), "torch": torch.__version__})
    print(f"wrote {OUT}: {len(CASES)} cases, {len(T)} tensors, torch {torch.__version__}")
