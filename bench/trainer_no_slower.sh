#!/usr/bin/env bash
# Same-sitting check that the Trainer redesign did not slow `convkit bench`: alternates the binary built before it
# (BASE) and after it (NEW) for ROUNDS rounds and prints each net's median train and inference img/s for both.
# Usage: [NET=resnet8] bench/trainer_no_slower.sh BASE_BINARY NEW_BINARY [ROUNDS]
set -euo pipefail
base=$1 new=$2 rounds=${3:-3}
out=$(mktemp -d)
for r in $(seq 1 "$rounds"); do
  "$base" bench --net "${NET:-all}" --threads 2 --json | tail -n 1 > "$out/base-$r.json"
  "$new" bench --net "${NET:-all}" --threads 2 --json | tail -n 1 > "$out/new-$r.json"
done
python3 - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
load = lambda who: [json.load(open(f"{out}/{who}-{i}.json")) for i in range(1, rounds + 1)]
base, new = load("base"), load("new")
for k, net in enumerate(r["net"] for r in base[0]):
    for what in ("train_img_per_s", "infer_img_per_s"):
        b = statistics.median(r[k][what] for r in base)
        n = statistics.median(r[k][what] for r in new)
        rounds_ratio = ", ".join(f"{x[k][what] / y[k][what]:.2f}" for x, y in zip(new, base))
        print(f"{net:<8} {what:<16} before {b:8.1f}  after {n:8.1f}  after/before {n / b:.3f}  (rounds: {rounds_ratio})")
PY
