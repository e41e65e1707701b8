#!/usr/bin/env bash
# Issue #15's figures: the lecture's hyperparameter search on LeNet-5 / Fashion-MNIST.
#  1. coarse: 16 random trials over lr and weight decay (both log-uniform), 3 epochs on 10,000 images each, ASHA;
#  2. fine: `search refine` around the best 4, 8 trials of the same budget;
#  3. the best trial's recipe retrained on every training image for the recipe's 15 epochs, test touched once;
#  4. the random-vs-grid demonstration.
# Plots go to docs/. About 10 minutes on the 2-core dev machine.
# Usage: bench/search_lenet5_fashion.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/search-lenet5-fashion}
rm -rf "$out"; mkdir -p "$out"
[ -n "${BIN:-}" ] || cargo build --release --quiet
bin=${BIN:-target/release/convkit}
db="sqlite:$out/studies.db"
$bin search --config recipes/lenet5-fashion-mnist.toml --space recipes/lenet5-fashion-mnist-space.toml \
  --trials 16 --set epochs=3 --set limit=10000 --study coarse --storage "$db" --out "$out/runs"
$bin search show --study coarse --storage "$db" --plot docs/search-coarse.png
$bin search refine --study coarse --storage "$db" --top 4 --trials 8
$bin search --study coarse-fine --storage "$db" --out "$out/runs"
$bin search show --study coarse-fine --storage "$db" --plot docs/search-fine.png
$bin search best --study coarse-fine --storage "$db" --out "$out/best.toml" --full-data --set epochs=15
$bin train --config "$out/best.toml" --out "$out/best-run" --no-sanity --json | tail -1
$bin search demo-random-vs-grid --plot docs/random-vs-grid.png
