#!/usr/bin/env bash
# Issue #14's ensembles on ResNet-20 / CIFAR-10 (JPEG export), each member trained for 10 epochs with the
# recipe's crop + flip, one warm-up epoch and cosine (as bench/resnet20_cifar10_10epochs.sh):
#  - independent: the seed-0 run of resnet20_cifar10_10epochs.sh (crop-flip) and seeds 1 and 2;
#  - snapshot: one SGDR run of 35 epochs, cycles of 5 epochs (snapshots after epochs 5, 10, ..., 35), no warm-up.
#    (The README's run was trained for 15 epochs and extended with --resume --epochs 25, then 35: resuming is
#    exact, so the same as one 35-epoch run.)
# About 25 min per 10-epoch run and 95 min for the SGDR run on the 2-core dev machine.
# Usage: bench/resnet20_cifar10_ensembles.sh [OUT_DIR]   (train only: TRAIN_ONLY=1)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/runs/cifar10-10epochs}
mkdir -p "$out"
[ -n "${BIN:-}" ] || cargo build --release --quiet
bin=${BIN:-target/release/convkit}
train() {  # name, extra args...
  local name=$1; shift
  [ -e "$out/$name/report.json" ] || $bin train --config recipes/resnet20-cifar10.toml --no-sanity --out "$out/$name" "$@" --json | tail -1
}
train sgdr --epochs 35 --warmup-epochs 0 --schedule sgdr:period=5,mult=1
train crop-flip --epochs 10
train crop-flip-seed1 --epochs 10 --seed 1
train crop-flip-seed2 --epochs 10 --seed 2
[ -z "${TRAIN_ONLY:-}" ] || exit 0
$bin ensemble --runs "$out/crop-flip" "$out/crop-flip-seed1" "$out/crop-flip-seed2"
$bin ensemble --runs "$out/crop-flip" "$out/crop-flip-seed1" "$out/crop-flip-seed2" --tta flip
$bin ensemble --snapshots "$out/sgdr"
$bin ensemble --snapshots "$out/sgdr" --last 3
$bin ensemble --snapshots "$out/sgdr" --last 2
