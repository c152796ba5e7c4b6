#!/usr/bin/env bash
# The main job: run the default scenario suite against the embedded mock cloud and print the verdict table.
# Extra arguments go to `azrw run` (e.g. scenarios/auth --junit out/junit.xml).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ci/setup.sh
cargo build --locked --release --bin azrw
# Default: every suite in the process runtime (the path CI proves for every suite); `--runtime docker` works too.
if [ $# -eq 0 ]; then set -- scenarios --runtime process --junit out/junit.xml --markdown out/summary.md; fi
exec target/release/azrw run "$@"
