#!/usr/bin/env bash
# The augmentation grid in the README (docs/augment-cifar10.png) and the input pipeline's speed with the heaviest
# augmentation (every per-image transform at once), beside a short ResNet-20 training run with the same settings,
# whose epoch lines say how long the steps waited for data.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
heavy='augment={hflip=true,crop_pad=4,affine={translate=0.05,rotate=10.0,scale=[0.9,1.1],shear=5.0},lens={k=[-0.15,0.15]},randaugment={n=2,magnitude=9},colour_jitter={brightness=0.3,contrast=0.3,saturation=0.3,hue=0.05},pca_colour=0.1,erasing={p=0.5}}'
target/release/convkit augment --config recipes/resnet20-cifar10.toml --set "$heavy" --out docs/augment-cifar10.png --bench
target/release/convkit augment --config recipes/resnet20-cifar10.toml --tta 10crop --n 4 --out docs/tta-10crop-cifar10.png
out=$(mktemp -d)
target/release/convkit train --config recipes/resnet20-cifar10.toml --set "$heavy" --limit 10000 --epochs 2 \
  --no-sanity --out "$out/run" 2>&1 | grep '^epoch'
