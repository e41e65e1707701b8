#!/usr/bin/env bash
# Issue #12's comparison: the regularized ResNet-20 recipe (recipes/resnet20-cifar10-regularized.toml: 40 epochs,
# crop + flip + random erasing + label smoothing 0.1, Polyak averaging) in convkit and in its PyTorch twin, on the
# same CIFAR-10 JPEG export, side by side: one thread each, at low priority. Both save after every epoch and pick up
# where they stopped when run again (convkit's --resume, the twin's --checkpoint), so the command can be repeated
# until both have finished. About 3 hours per side on the 2-core dev machine when they share it.
# Usage: bench/resnet20_cifar10_twins.sh [DIR]   (default target/runs/r12; logs: DIR/convkit.log, DIR/torch.log)
# TWIN_ARGS adds arguments to the twin: the first pair (target/runs/r12, finished 2026-11-29) ran it with every
# parameter weight-decayed, so it resumes only with TWIN_ARGS=--decay-all.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-target/runs/r12}
mkdir -p "$dir"
cargo build --release --quiet
bin=target/release/convkit
py=${PYTHON:-target/torch-venv/bin/python}
if [ -e "$dir/convkit/checkpoints/last" ]; then
  ck=(train --resume "$dir/convkit" --threads 1)
else
  ck=(train --config recipes/resnet20-cifar10-regularized.toml --out "$dir/convkit" --threads 1)
fi
nice -n 19 "$bin" "${ck[@]}" >>"$dir/convkit.log" 2>&1 &
nice -n 19 "$py" bench/resnet20_cifar10_torch.py --epochs 40 --erasing 0.5 --label-smoothing 0.1 --threads 1 \
  --checkpoint "$dir/torch-twin.pt" ${TWIN_ARGS:-} >>"$dir/torch.log" 2>&1 &
wait
tail -n 4 "$dir/convkit.log" "$dir/torch.log"
for tta in single flip; do
  echo "convkit best --tta $tta: $($bin eval --checkpoint "$dir/convkit/checkpoints/best" --tta $tta --json | tail -1 | cut -c1-80)"
done
