#!/usr/bin/env bash
# The test command: set up what the tests need, then run every test (unit, self-tests with violating fake
# senders, and the real Prometheus cases). Same command locally and in CI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ci/setup.sh
cargo test --locked 2>&1
