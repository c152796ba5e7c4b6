#!/usr/bin/env bash
# Installs and starts what azrw's suite and tests need on a fresh Debian machine, idempotently:
# the Go-built Prometheus agents of the catalog (cached under ~/.cache/azrw), and the tools the runtimes use.
# Run as root (the process runtime creates network namespaces).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

need_apt=()
command -v go >/dev/null || need_apt+=(golang-go)
command -v cc >/dev/null || need_apt+=(build-essential)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "setup: cargo (Rust) is required" >&2; exit 1; }

# Agents: every version in the catalog, built once per machine.
mapfile -t versions < <(grep -v '^\s*\(#\|$\)' "$here/agents.txt")
"$here/provision-agents.sh" "${versions[@]}"
