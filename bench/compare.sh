#!/usr/bin/env bash
# Runs `convkit bench` and bench/pytorch_ref.py in the same sitting, alternating them for ROUNDS rounds so that
# both see the same machine load, and prints convkit/PyTorch per net (medians over the rounds).
# PyTorch is installed (once) into target/torch-venv, never used by the tests.
# Usage: bench/compare.sh [THREADS] [BATCH] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
batch=${2:-128}
rounds=${3:-3}
venv=target/torch-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch, numpy" 2>/dev/null; then
  echo "installing PyTorch into $venv (once)..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch numpy
fi
cargo build --release -q
out=target/compare
mkdir -p "$out"
for r in $(seq 1 "$rounds"); do
  target/release/convkit bench --net all --threads "$threads" --batch "$batch" --json | tail -n 1 > "$out/convkit-$r.json"
  "$venv/bin/python" bench/pytorch_ref.py "$threads" "$batch" | tail -n 1 > "$out/torch-$r.json"
  echo "round $r/$rounds done" >&2
done
"$venv/bin/python" - "$out" "$rounds" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
ck = [{r["net"]: r for r in json.load(open(f"{out}/convkit-{i}.json"))} for i in range(1, rounds + 1)]
pt = [json.load(open(f"{out}/torch-{i}.json")) for i in range(1, rounds + 1)]
med = statistics.median
peak = med(p["sgemm_gflops_numpy"] for p in pt)
print(f"machine SGEMM peak (numpy 2048^3, {pt[0]['threads']} threads, median of rounds): {peak:.0f} GFLOP/s; torch {pt[0]['torch']}")
print(f"{'net':<8} {'convkit train':>14} {'torch train':>12} {'ratio':>6} {'convkit infer':>14} {'torch infer':>12} {'ratio':>6} {'ck %peak':>9} {'pt %peak':>9}   per-round train ratios")
res = []
for net in [r["net"] for r in pt[0]["results"]]:
    c_tr = [c[net]["train_img_per_s"] for c in ck]
    c_in = [c[net]["infer_img_per_s"] for c in ck]
    p_tr = [next(r for r in p["results"] if r["net"] == net)["train_img_per_s"] for p in pt]
    p_in = [next(r for r in p["results"] if r["net"] == net)["infer_img_per_s"] for p in pt]
    flop = 3 * ck[0][net]["mflop_per_image_forward"] * 1e6
    ct, pt_, ci, pi = med(c_tr), med(p_tr), med(c_in), med(p_in)
    per_round = " ".join(f"{a / b:.2f}" for a, b in zip(c_tr, p_tr))
    print(f"{net:<8} {ct:>14.0f} {pt_:>12.0f} {ct / pt_:>5.2f}x {ci:>14.0f} {pi:>12.0f} {ci / pi:>5.2f}x "
          f"{100 * ct * flop / 1e9 / peak:>8.1f}% {100 * pt_ * flop / 1e9 / peak:>8.1f}%   {per_round}")
    res.append({"net": net, "train_ratio": ct / pt_, "infer_ratio": ci / pi, "convkit_train": ct, "torch_train": pt_,
                "convkit_infer": ci, "torch_infer": pi, "round_train_ratios": [a / b for a, b in zip(c_tr, p_tr)]})
print(json.dumps({"sgemm_peak_gflops": peak, "nets": res}))
PY
