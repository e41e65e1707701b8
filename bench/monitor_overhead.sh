#!/usr/bin/env bash
# The live monitor's cost: the LeNet-5 recipe for 2 epochs with the monitor off (--monitor-every 0) and on (every
# 50 steps), alternating for ROUNDS rounds; prints each run's per-epoch seconds (metrics.csv) and the medians.
# Usage: bench/monitor_overhead.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
cargo build --release --quiet
out=$(mktemp -d)
for r in $(seq 1 "$rounds"); do
  for every in 0 50; do
    target/release/convkit train --config recipes/lenet5-mnist.toml --epochs 2 --no-sanity \
      --monitor-every "$every" --out "$out/$every-$r" > /dev/null 2>&1
    cut -d, -f8 "$out/$every-$r/metrics.csv" | tail -n +2 >> "$out/every-$every.txt"
  done
done
python3 - "$out" <<'PY'
import statistics, sys
for every in (0, 50):
    s = [float(x) for x in open(f"{sys.argv[1]}/every-{every}.txt")]
    print(f"monitor every {every:>2}: epoch seconds {s}, median {statistics.median(s):.2f}")
PY
