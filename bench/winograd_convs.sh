#!/usr/bin/env bash
# resnet20's three stride-1 3x3 convs (16->16 on 32x32, 32->32 on 16x16, 64->64 on 8x8), batch 128, one core:
# convkit's Winograd forward (examples/winograd_convs.rs) against PyTorch's conv (forward, and forward + backward),
# alternating ROUNDS times. Usage: bench/winograd_convs.sh [ROUNDS]   (needs target/torch-venv: bench/compare.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q --example winograd_convs
grep -m1 "model name" /proc/cpuinfo
for r in $(seq 1 "${1:-3}"); do
  echo "round $r"
  taskset -c 0 target/release/examples/winograd_convs | sed 's/^/  convkit /'
  taskset -c 0 target/torch-venv/bin/python bench/conv_layers_torch.py 1 | sed 's/^/  torch   /'
done
