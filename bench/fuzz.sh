#!/usr/bin/env bash
# Builds the fuzz targets once, then runs each for SECONDS (default 600) in turn, from the committed seeds
# (fuzz/seeds/TARGET) and a growing corpus (fuzz/corpus/TARGET, not committed); crashes land in
# fuzz/artifacts/TARGET/, logs in target/fuzz-logs/. Needs cargo-fuzz (cargo install cargo-fuzz); RUSTC_BOOTSTRAP
# lets the stable toolchain take the sanitizer flags.
# Usage: bench/fuzz.sh [SECONDS] [TARGET...]
set -uo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}; shift || true
targets=("$@"); [ ${#targets[@]} -gt 0 ] || targets=(idx cifar_bin image_folder_tar checkpoint recipe)
mkdir -p target/fuzz-logs
RUSTC_BOOTSTRAP=1 cargo fuzz build -O > target/fuzz-logs/build.log 2>&1 || { echo "build failed: target/fuzz-logs/build.log"; exit 1; }
bins=fuzz/target/x86_64-unknown-linux-gnu/release
for t in "${targets[@]}"; do
  mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
  "$bins/$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -artifact_prefix="fuzz/artifacts/$t/" \
    -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1 \
    > "target/fuzz-logs/$t.log" 2>&1
  echo "$t: exit $? $(grep -a -E '^stat::number_of_executed_units' "target/fuzz-logs/$t.log") $(ls "fuzz/artifacts/$t" | wc -l) artifacts"
done
