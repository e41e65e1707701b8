#!/usr/bin/env bash
# Runs `convkit bench` and bench/pytorch_ref.py in the same sitting and prints convkit/PyTorch per net.
# PyTorch is installed (once) into target/torch-venv, never used by the tests.
# Usage: bench/compare.sh [THREADS] [BATCH]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
batch=${2:-128}
venv=target/torch-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch, numpy" 2>/dev/null; then
  echo "installing PyTorch into $venv (once)..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch numpy
fi
cargo build --release -q
ck=$(target/release/convkit bench --net all --threads "$threads" --batch "$batch" --json | tail -n 1)
pt=$("$venv/bin/python" bench/pytorch_ref.py "$threads" "$batch" | tail -n 1)
"$venv/bin/python" - "$ck" "$pt" <<'PY'
import json, sys
ck = {r["net"]: r for r in json.loads(sys.argv[1])}
pt = json.loads(sys.argv[2])
peak = pt["sgemm_gflops_numpy"]
print(f"machine SGEMM peak (numpy 2048^3, {pt['threads']} threads): {peak:.0f} GFLOP/s; torch {pt['torch']}")
print(f"{'net':<8} {'convkit train':>14} {'torch train':>12} {'ratio':>6} {'convkit infer':>14} {'torch infer':>12} {'ratio':>6} {'ck %peak':>9} {'pt %peak':>9}")
out = []
for r in pt["results"]:
    c = ck[r["net"]]
    flop = 3 * c["mflop_per_image_forward"] * 1e6
    ck_frac = c["train_img_per_s"] * flop / 1e9 / peak
    pt_frac = r["train_img_per_s"] * flop / 1e9 / peak
    tr = c["train_img_per_s"] / r["train_img_per_s"]
    ir = c["infer_img_per_s"] / r["infer_img_per_s"]
    print(f"{r['net']:<8} {c['train_img_per_s']:>14.0f} {r['train_img_per_s']:>12.0f} {tr:>5.2f}x {c['infer_img_per_s']:>14.0f} {r['infer_img_per_s']:>12.0f} {ir:>5.2f}x {100*ck_frac:>8.1f}% {100*pt_frac:>8.1f}%")
    out.append({"net": r["net"], "train_ratio": tr, "infer_ratio": ir, "convkit_train": c["train_img_per_s"],
                "torch_train": r["train_img_per_s"], "convkit_peak_fraction": ck_frac, "torch_peak_fraction": pt_frac})
print(json.dumps({"sgemm_peak_gflops": peak, "nets": out}))
PY
