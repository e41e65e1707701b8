#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) one after the other, from the committed seeds
# (fuzz/seeds/TARGET) and the growing corpus (fuzz/corpus/TARGET, not committed); crashes land in
# fuzz/artifacts/TARGET/. Each log ends with libFuzzer's execution count. Needs cargo-fuzz
# (cargo install cargo-fuzz); RUSTC_BOOTSTRAP lets the stable toolchain take the sanitizer flags.
# Usage: bench/fuzz.sh [SECONDS] [TARGET...]
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}; shift || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(idx cifar_bin image_folder_tar checkpoint recipe)
mkdir -p target/fuzz-logs
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t"
  RUSTC_BOOTSTRAP=1 cargo fuzz run -O "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
    > "target/fuzz-logs/$t.log" 2>&1
  echo "$t: exit $? $(grep -E '^stat::number_of_executed_units' "target/fuzz-logs/$t.log")"
done
