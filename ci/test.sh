#!/usr/bin/env bash
# The test command: set up what the tests need, then run every test (unit, self-tests with violating fake
# senders, and the real Prometheus cases). Same command locally and in CI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ci/setup.sh
# setup.sh started Docker, so a Docker test that finds no daemon is a failure here, not a skip.
export AZRW_REQUIRE_DOCKER="${AZRW_REQUIRE_DOCKER:-1}"
# ... and so is a report-page test that finds no Chromium.
export AZRW_REQUIRE_CHROMIUM="${AZRW_REQUIRE_CHROMIUM:-1}"
cargo test --locked 2>&1
