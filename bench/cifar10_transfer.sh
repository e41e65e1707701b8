#!/usr/bin/env bash
# The lecture's transfer table as an experiment (issue #14): pretrain ResNet-20 on CIFAR-10's classes 0-4
# (airplane .. deer), then learn classes 5-9 (dog .. truck) from about 100 images per class: from scratch, a linear
# probe on the pretrained features, and fine-tuning every layer from the pretrained start. Test: the 5000 test
# images of classes 5-9. About 15 minutes on the 2-core dev machine.
# Usage: bench/cifar10_transfer.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/runs/cifar10-transfer}
mkdir -p "$out"
[ -n "${BIN:-}" ] || cargo build --release --quiet
bin=${BIN:-target/release/convkit}
data=folder:../shared/data/cifar10/cifar10-jpg.tar.gz
first='classes=["airplane","automobile","bird","cat","deer"]'
second='classes=["dog","frog","horse","ship","truck"]'
recipe=(--config recipes/resnet20-cifar10.toml --no-sanity --monitor-every 0)
little=(--limit 500 --val 1000 --epochs 30 --set augment.crop_pad=4 --set augment.hflip=true)
timed() { local t0=$SECONDS; "$@"; echo "wall: $((SECONDS - t0)) s"; }
[ -e "$out/pretrain/report.json" ] || timed $bin train "${recipe[@]}" --set "$first" --val 2500 --epochs 8 --out "$out/pretrain" | tail -3
rm -rf "$out/scratch" "$out/probe" "$out/finetune"
timed $bin train "${recipe[@]}" --set "$second" "${little[@]}" --lr 0.05 --out "$out/scratch" | tail -3
timed $bin features --from "$out/pretrain/checkpoints/best" --data "$data" \
  --classes dog,frog,horse,ship,truck --limit 500 --out "$out/probe" | tail -2
timed $bin finetune --from "$out/pretrain/checkpoints/best" "${recipe[@]}" --set "$second" "${little[@]}" \
  --freeze none --train-bn --lr 0.01 --out "$out/finetune" | tail -3
