#!/usr/bin/env bash
# MobileNetV2 at 160x160 (issue #14's fine-tuning net): convkit's `mobilenetv2_keras` against PyTorch's, alternating
# ROUNDS rounds in the same sitting (batch BATCH, 2 threads, SGD momentum, synthetic input).
# Usage: bench/mobilenetv2_compare.sh [BATCH] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
batch=${1:-16}
rounds=${2:-3}
[ -n "${BIN:-}" ] || cargo build --release --quiet
bin=${BIN:-target/release/convkit}
for r in $(seq 1 "$rounds"); do
  $bin bench --net mobilenetv2_keras --threads 2 --batch "$batch" --steps 5 --runs 3 | tail -1
  target/torch-venv/bin/python bench/mobilenetv2_torch.py 2 "$batch" 5
done
