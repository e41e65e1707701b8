#!/usr/bin/env bash
# Runs `convkit bench` and bench/pytorch_ref.py in the same sitting, alternating them net by net for ROUNDS rounds
# so that both see the same machine load, and prints convkit/PyTorch per net (medians over the rounds), each
# process's peak resident memory, the fraction of the machine's SGEMM peak, and the CPU with its vector instructions.
# PyTorch is installed (once) into target/torch-venv, never used by the tests.
#
# Usage: bench/compare.sh [THREADS] [ROUNDS]
#   NETS="small:128 resnet8:128 resnet20:128 resnet18:16"  nets and their batch (resnet18 runs at 224x224;
#                                                          also airbench:1024, the cifar10-fast recipe's)
#   SCALING=1   also run every net at 1 thread and report what the second thread adds, for both programs
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-2}
rounds=${2:-3}
nets=${NETS:-small:128 resnet8:128 resnet20:128 resnet18:16}
venv=target/torch-venv
if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c "import torch, numpy, PIL" 2>/dev/null; then
  echo "installing PyTorch into $venv (once)..." >&2
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q torch numpy pillow
fi
[ -n "${BIN:-}" ] || cargo build --release -q
bin=${BIN:-target/release/convkit}
out=target/compare
rm -rf "$out" && mkdir -p "$out"
# Fewer timed steps where one step takes a second.
steps_for() { case $1 in resnet18 | airbench) echo "5 3" ;; *) echo "20 5" ;; esac; }
one() {  # round, threads, net, batch: one process each, under /usr/bin/time for the peak RSS
  local r=$1 t=$2 net=$3 batch=$4 steps runs
  read -r steps runs < <(steps_for "$net")
  /usr/bin/time -f "%M" -o "$out/convkit-$net-t$t-$r.rss" \
    "$bin" bench --net "$net" --threads "$t" --batch "$batch" --steps "$steps" --runs "$runs" --json \
    | tail -n 1 > "$out/convkit-$net-t$t-$r.json"
  /usr/bin/time -f "%M" -o "$out/torch-$net-t$t-$r.rss" \
    "$venv/bin/python" bench/pytorch_ref.py "$t" "$batch" "$net" "$steps" "$runs" \
    | tail -n 1 > "$out/torch-$net-t$t-$r.json"
}
for r in $(seq 1 "$rounds"); do
  for spec in $nets; do
    one "$r" "$threads" "${spec%%:*}" "${spec##*:}"
    [ -z "${SCALING:-}" ] || [ "$threads" = 1 ] || one "$r" 1 "${spec%%:*}" "${spec##*:}"
  done
  echo "round $r/$rounds done" >&2
done
cpu=$(grep -m1 "model name" /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')
isa=$(grep -m1 "^flags" /proc/cpuinfo | grep -q avx512f && echo "AVX-512" || (grep -m1 "^flags" /proc/cpuinfo | grep -q avx2 && echo "AVX2" || echo "SSE only"))
"$venv/bin/python" - "$out" "$rounds" "$threads" "$cpu" "$isa" "$nets" <<'PY'
import json, statistics, sys
out, rounds, threads, cpu, isa, nets = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6]
med = statistics.median
def load(who, net, t, what):
    vals = []
    for r in range(1, rounds + 1):
        if what == "rss":
            vals.append(int(open(f"{out}/{who}-{net}-t{t}-{r}.rss").read().split()[-1]) / 1024)
        else:
            j = json.load(open(f"{out}/{who}-{net}-t{t}-{r}.json"))
            vals.append(j[0] if who == "convkit" else j)
    return vals
first_pt = load("torch", nets.split()[0].split(":")[0], threads, "json")
peak = med(p["sgemm_gflops_numpy"] for p in first_pt)
print(f"CPU: {cpu} ({isa}), {threads} threads; torch {first_pt[0]['torch']}")
print(f"machine SGEMM peak (numpy 2048^3, {threads} threads, median of rounds): {peak:.0f} GFLOP/s")
print(f"{'net':<9} {'batch':>5} {'convkit train':>13} {'torch train':>11} {'ratio':>6} {'convkit infer':>13} "
      f"{'torch infer':>11} {'ratio':>6} {'ck %peak':>8} {'pt %peak':>8} {'ck MB':>6} {'pt MB':>6}  per-round train | inference ratios")
res = []
for spec in nets.split():
    net, batch = spec.split(":")
    ck, pt = load("convkit", net, threads, "json"), load("torch", net, threads, "json")
    c_tr, c_in = [c["train_img_per_s"] for c in ck], [c["infer_img_per_s"] for c in ck]
    p_tr = [p["results"][0]["train_img_per_s"] for p in pt]
    p_in = [p["results"][0]["infer_img_per_s"] for p in pt]
    ck_mb, pt_mb = med(load("convkit", net, threads, "rss")), med(load("torch", net, threads, "rss"))
    flop = 3 * ck[0]["mflop_per_image_forward"] * 1e6
    ct, pt_, ci, pi = med(c_tr), med(p_tr), med(c_in), med(p_in)
    ratios = lambda c, p: " ".join(f"{a / b:.2f}" for a, b in zip(c, p))
    per_round = f"{ratios(c_tr, p_tr)} | {ratios(c_in, p_in)}"
    rate = lambda v: f"{v:.0f}" if v >= 100 else f"{v:.3g}"  # resnet18 runs at a few img/s
    print(f"{net:<9} {batch:>5} {rate(ct):>13} {rate(pt_):>11} {ct / pt_:>5.2f}x {rate(ci):>13} {rate(pi):>11} {ci / pi:>5.2f}x "
          f"{100 * ct * flop / 1e9 / peak:>7.1f}% {100 * pt_ * flop / 1e9 / peak:>7.1f}% {ck_mb:>6.0f} {pt_mb:>6.0f}  {per_round}")
    row = {"net": net, "batch": int(batch), "train_ratio": ct / pt_, "infer_ratio": ci / pi, "convkit_train": ct,
           "torch_train": pt_, "convkit_infer": ci, "torch_infer": pi, "convkit_peak_rss_mb": ck_mb,
           "torch_peak_rss_mb": pt_mb, "round_train_ratios": [a / b for a, b in zip(c_tr, p_tr)],
           "round_infer_ratios": [a / b for a, b in zip(c_in, p_in)]}
    if threads != 1:
        try:
            c1 = med(c["train_img_per_s"] for c in load("convkit", net, 1, "json"))
            p1 = med(p["results"][0]["train_img_per_s"] for p in load("torch", net, 1, "json"))
            row.update(convkit_scaling=ct / c1, torch_scaling=pt_ / p1)
            print(f"{'':<9} training at 1 thread: convkit {rate(c1)}, torch {rate(p1)} img/s; {threads} threads give "
                  f"{ct / c1:.2f}x and {pt_ / p1:.2f}x")
        except FileNotFoundError:  # run without SCALING=1
            pass
    res.append(row)
print(json.dumps({"cpu": cpu, "isa": isa, "threads": threads, "sgemm_peak_gflops": peak, "nets": res}))
PY
