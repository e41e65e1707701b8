"""Reference numbers for RandAugment's sharpness and equalize (src/augment/randaugment.rs), from Pillow, whose
ImageEnhance.Sharpness and ImageOps.equalize torchvision's RandAugment follows. Run once:

    target/torch-venv/bin/python reference/pil_randaugment.py > reference/pil_randaugment.json
"""
import json

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

H, W = 7, 9
# A fixed RGB image (CHW order in the JSON): smooth ramps plus a hashed texture, so every 3x3 window differs.
img = np.array([[[(37 * y + 11 * x + 71 * c + (x * y * 29 + c * 13) % 53) % 256 for c in range(3)]
                 for x in range(W)] for y in range(H)], dtype=np.uint8)
# A low-contrast image (values 100..139), where equalization spreads the histogram.
low = (100 + (img.astype(np.int32) % 40)).astype(np.uint8)
pil, pil_low = Image.fromarray(img), Image.fromarray(low)
chw = lambda a: np.asarray(a).transpose(2, 0, 1).reshape(-1).tolist()
out = {"shape": [3, H, W], "image": chw(img), "low": chw(low),
       "equalize": chw(ImageOps.equalize(pil)), "equalize_low": chw(ImageOps.equalize(pil_low))}
for f in (0.1, 0.55, 1.0, 1.9):
    out[f"sharpness_{f}"] = chw(ImageEnhance.Sharpness(pil).enhance(f))
print(json.dumps(out))
