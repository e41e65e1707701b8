#!/usr/bin/env bash
# The README's ResNet-20 / CIFAR-10 run, in the three legs it was measured in: the recipe's 40 epochs, then two
# resumes that re-stretch the cosine (each a warm restart: the rate jumps to where a 70- and then a 140-epoch cosine
# stands, and anneals to 0 again). Every leg ends with the test-set evaluation and writes report.json; the last
# lines evaluate the final `best` and Polyak checkpoints with test-time mirror averaging.
# Usage: bench/resnet20_cifar10.sh [RUN_DIR]   (about 100 s per epoch on the 2-core dev machine: 4.3 hours in all)
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:-runs/resnet20-cifar10}
cargo build --release --quiet
bin=target/release/convkit
if [ -e "$run/checkpoints/last" ]; then
  echo "$run already has a checkpoint; resuming it" >&2
else
  $bin train --config recipes/resnet20-cifar10.toml --out "$run" --json | tail -1
fi
$bin train --resume "$run" --epochs 70 --json | tail -1
$bin train --resume "$run" --epochs 140 --json | tail -1
for ck in best ema; do
  echo "$ck, --tta flip: $($bin eval --checkpoint "$run/checkpoints/$ck" --tta flip --json | tail -1)"
done
