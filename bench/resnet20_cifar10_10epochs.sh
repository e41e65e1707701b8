#!/usr/bin/env bash
# Issue #12's same-epochs comparison: ResNet-20 on the CIFAR-10 JPEG export for 10 epochs (the recipe's schedule
# squeezed: 1 warm-up epoch + cosine) with (1) the regularized recipe (crop + flip + random erasing + label
# smoothing), (2) no augmentation at all, (3) crop + flip only; then every test-time augmentation on each run's
# best checkpoint. About 20 min a run on the 2-core dev machine.
# Usage: bench/resnet20_cifar10_10epochs.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/cifar10-10epochs}
mkdir -p "$out"
cargo build --release --quiet
bin=${BIN:-target/release/convkit}
train() {  # name, recipe, extra args...
  local name=$1 recipe=$2; shift 2
  [ -e "$out/$name/report.json" ] || $bin train --config "$recipe" --epochs 10 --no-sanity --out "$out/$name" "$@" --json | tail -1
  for tta in single flip 10crop multiscale; do
    echo "$name --tta $tta: $($bin eval --run "$out/$name" --tta "$tta" --json | tail -1 | cut -c1-60)"
  done
}
train regularized recipes/resnet20-cifar10-regularized.toml
train none recipes/resnet20-cifar10.toml --set augment.crop_pad=0 --set augment.hflip=false
train crop-flip recipes/resnet20-cifar10.toml
