#!/usr/bin/env bash
# The README's regularized ResNet-20 / CIFAR-10 figure: the recipe's 40 epochs (crop + flip + random erasing +
# label smoothing), then the test set with each test-time augmentation, for the best and Polyak checkpoints.
# Usage: bench/resnet20_cifar10_regularized.sh [RUN_DIR]   (about 85 min on the 2-core dev machine)
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/resnet20-cifar10-regularized}
cargo build --release --quiet
bin=target/release/convkit
[ -e "$run/checkpoints/last" ] || $bin train --config recipes/resnet20-cifar10-regularized.toml --out "$run" --json | tail -1
for ck in best ema; do
  for tta in single flip 10crop multiscale; do
    echo "$ck --tta $tta: $($bin eval --checkpoint "$run/checkpoints/$ck" --tta "$tta" --json | tail -1 | cut -c1-80)"
  done
done
