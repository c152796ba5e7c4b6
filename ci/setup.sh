#!/usr/bin/env bash
# Installs and starts what azrw's suite and tests need on a fresh Debian machine, idempotently:
# the Go-built Prometheus agents of the catalog (cached under ~/.cache/azrw), Docker (Debian's docker.io, its
# daemon started when not running) and the agents' local images (FROM scratch, built without any registry).
# Run as root (the process runtime creates network namespaces; dockerd needs root).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

need_apt=()
command -v go >/dev/null || need_apt+=(golang-go)
command -v cc >/dev/null || need_apt+=(build-essential)
command -v dockerd >/dev/null || need_apt+=(docker.io)
# Headless Chromium loads out/report.html in the e2e report test (about 45 s to install from the Debian mirror).
command -v chromium >/dev/null || need_apt+=(chromium)
# ci/repeat.sh saturates the cores with it (AZRW_REPEAT_LOAD_LAST=1) to judge timing checks under load.
command -v stress-ng >/dev/null || need_apt+=(stress-ng)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo (Rust) is required" >&2; exit 1; }

# Docker: start the daemon when nothing answers (no systemd on CI machines), then wait for it, bounded.
docker_up() { docker info >/dev/null 2>&1; }
if ! docker_up; then
  log="${AZRW_CACHE:-$HOME/.cache/azrw}/dockerd.log"
  mkdir -p "$(dirname "$log")"
  echo "setup: starting dockerd (log: $log)"
  if command -v service >/dev/null && service docker start >/dev/null 2>&1; then :; else
    nohup dockerd >"$log" 2>&1 &
  fi
  for _ in $(seq 1 60); do docker_up && break; sleep 1; done
  docker_up || { echo "setup: dockerd did not answer within 60s; see $log" >&2; exit 1; }
fi
echo "setup: docker $(docker version --format '{{.Server.Version}}' 2>/dev/null) answers"

# Agents: every version in the catalog, built once per machine.
mapfile -t versions < <(grep -v '^\s*\(#\|$\)' "$here/agents.txt")
"$here/provision-agents.sh" "${versions[@]}"

# Their images: FROM scratch + the static binary; rebuilt each time (seconds), so they always match the binaries.
cd "$here/.."
cargo run --locked --release --quiet --bin azrw -- agents image "${versions[@]}"
