#!/usr/bin/env bash
# docs/report-lenet5-mnist.png: the default recipe's report.html in headless Chromium (Debian's `chromium`).
# (The committed PNG was then quantised to 256 colours with Pillow to keep the repository small.)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
run=target/runs/lenet5-mnist-report
rm -rf "$run"
target/release/convkit train --config recipes/lenet5-mnist.toml --out "$run"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1600,3650 \
  --screenshot=docs/report-lenet5-mnist.png "file://$(realpath "$run/report.html")"
