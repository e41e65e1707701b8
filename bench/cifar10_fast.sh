#!/usr/bin/env bash
# Issue #13's measurement: recipes/cifar10-fast.toml in convkit and its PyTorch twin (bench/cifar10_fast_torch.py)
# on the same CIFAR-10 JPEG export, seed by seed in one sitting, both with 2 threads and the machine otherwise idle:
# training wall time (validation included), time to 94% validation, test accuracy on one view and with airbench's
# flip-translate averaging, and each side's whole-process wall time and peak resident memory. About an hour per run
# and side on the 2-core dev machine.
# Usage: bench/cifar10_fast.sh [SEEDS] [OUT_DIR]   (default "0 1 2", runs/cifar10-fast; log: OUT_DIR/summary.txt)
# EPOCHS=N shortens both sides' runs alike (their schedules are squeezed into N epochs) for a quicker wall-time
# sitting; their accuracies are then not the recipe's.
set -euo pipefail
cd "$(dirname "$0")/.."
seeds=${1:-0 1 2}
out=${2:-runs/cifar10-fast}
epochs=${EPOCHS:+--epochs $EPOCHS}
mkdir -p "$out"
cargo build --release --quiet
bin=${BIN:-target/release/convkit}
py=${PYTHON:-target/torch-venv/bin/python}
log="$out/summary.txt"
lscpu | grep -m1 "Model name" | tee -a "$log"
for s in $seeds; do
  run="$out/seed$s"
  # Each side's whole process (data from its decoded cache, training, the test set) under /usr/bin/time: wall
  # seconds and peak resident KB. "trained in" / "training" is the part both scripts time alike: the model built
  # and whitened, then every epoch with its validation.
  [ -e "$run/report.json" ] || /usr/bin/time -f "%e %M" -o "$run.time" "$bin" train \
    --config recipes/cifar10-fast.toml --set seed="$s" --threads 2 $epochs --target-acc 0.94 --no-sanity \
    --out "$run" 2>&1 | grep -E "^(epoch|done|time to)" | tee "$run.log"
  done_line=$(grep -E '^(done|time to)' "$run.log" | tr '\n' ' ')
  echo "convkit seed $s: ${done_line}process $(cat "$run.time" 2>/dev/null) (s, KB)" | tee -a "$log"
  for tta in single flip-translate; do
    echo "convkit seed $s --tta $tta: $("$bin" eval --run "$run" --tta "$tta" --json | tail -1 | cut -c1-60)" | tee -a "$log"
  done
  /usr/bin/time -f "%e %M" -o "$out/torch-seed$s.time" "$py" bench/cifar10_fast_torch.py --seed "$s" --threads 2 \
    $epochs | tee "$out/torch-seed$s.log" | tail -n 2 | sed "s/^/torch seed $s: /" | tee -a "$log"
  echo "torch seed $s: process $(cat "$out/torch-seed$s.time") (s, KB)" | tee -a "$log"
done
# The machine's SGEMM peak in the same sitting (numpy, 2048^3, 2 threads; the median of three, as a first cold
# call can read 25% low), for the fraction of it each side reached.
OPENBLAS_NUM_THREADS=2 "$py" - <<'PY' | tee -a "$log"
import statistics, sys
sys.argv = ["", "2"]
sys.path.insert(0, "bench")
import pytorch_ref
peak = statistics.median(pytorch_ref.sgemm_peak()[0] for _ in range(3))
print(f"SGEMM peak, 2 threads: numpy {peak:.0f} GFLOP/s")
PY
