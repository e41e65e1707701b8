#!/usr/bin/env bash
# The run report in a real browser: trains a small LeNet-5 run, opens its report.html in headless Chromium (Debian's
# `chromium`, installed here when missing), fails on any console error or on a section or chart the browser did not
# render, and saves a screenshot (target/browser/report.png). Skips, saying why, only where Chromium cannot be
# installed. Run by .ci/run after the Rust tests.
set -euo pipefail
cd "$(dirname "$0")/.."
out=target/browser
mkdir -p "$out"
if ! command -v chromium > /dev/null; then
  echo "browser test: installing Debian's chromium..." >&2
  if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; } > "$out/apt.log" 2>&1; then
    echo "browser test SKIPPED: chromium could not be installed (see $out/apt.log)"
    exit 0
  fi
fi
cargo build --release --locked --quiet
run=$(mktemp -d)/run
target/release/convkit train --config recipes/lenet5-mnist.toml --epochs 2 --limit 1000 --monitor-every 10 \
  --out "$run" > "$out/train.log" 2>&1
page="file://$(realpath "$run/report.html")"
flags=(--headless --no-sandbox --disable-gpu --hide-scrollbars --enable-logging=stderr --v=0)
chromium "${flags[@]}" --window-size=1600,3800 --screenshot="$out/report.png" "$page" 2> "$out/console.log" > /dev/null
chromium "${flags[@]}" --dump-dom "$page" 2>> "$out/console.log" > "$out/dom.html"
failed=0
if grep -E "CONSOLE|Uncaught" "$out/console.log"; then
  echo "browser test: the page logged to the console (above)"; failed=1
fi
for id in figures curves ratios activations histograms sanity diagnosis confusion misclassified model recipe; do
  grep -q "id=\"$id\"" "$out/dom.html" || { echo "browser test: section '$id' missing"; failed=1; }
done
charts=$(grep -o "<svg" "$out/dom.html" | wc -l)
[ "$charts" -ge 4 ] || { echo "browser test: $charts charts rendered, expected at least 4"; failed=1; }
images=$(grep -o '<img[^>]*src="data:image/png;base64,[A-Za-z0-9+/=]\{40,\}"' "$out/dom.html" | wc -l)
[ "$images" -ge 1 ] || { echo "browser test: no misclassified image in the page"; failed=1; }
[ -s "$out/report.png" ] || { echo "browser test: no screenshot"; failed=1; }
if [ "$failed" = 0 ]; then
  echo "browser test: report.html rendered with every section, $charts charts and $images images; screenshot $out/report.png"
  echo "browser: 1 passed, 0 failed"
else
  echo "browser: 0 passed, 1 failed"
  exit 1
fi
