#!/usr/bin/env bash
# The README's optimizer comparison: LeNet-5 on Fashion-MNIST, the recipe's 15 epochs and step schedule,
# each optimizer at its customary learning rate. Prints a Markdown table.
# Usage: bench/optim_table.sh [OUT_DIR]   (about 1 minute per optimizer on the 2-core dev machine)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/optim-table}
cargo build --release --quiet
bin=target/release/convkit
printf '| optimizer | lr | best val acc | test acc | final train loss | wall s |\n|---|---|---|---|---|---|\n'
for spec in sgd:0.1 momentum:0.01 nesterov:0.01 adagrad:0.01 rmsprop:0.001 adam:0.001 adamw:0.001; do
  opt=${spec%%:*}; lr=${spec#*:}
  $bin train --config recipes/lenet5-fashion-mnist.toml --optimizer "$opt" --lr "$lr" --out "$out/$opt" --json \
    2>/dev/null | tail -1 | python3 -c "
import json, sys
r = json.load(sys.stdin)
print(f\"| $opt | $lr | {100*r['best_val_accuracy']:.2f}% | {100*r['test_accuracy']:.2f}% | {r['final_train_loss']:.4f} | {r['wall_seconds']:.0f} |\")"
done
