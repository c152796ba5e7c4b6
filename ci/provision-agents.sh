#!/usr/bin/env bash
# Builds upstream Prometheus (with azuread, unlike Debian's package) from its Go modules, one binary per
# version, cached outside the work tree so that a fresh clone on the same machine reuses it.
#
#   ci/provision-agents.sh 2.53.4 3.5.5 3.16.0
#
# Idempotent: a version whose binary exists and answers --version is skipped.
# Cache root: $AZRW_CACHE (default ~/.cache/azrw). Binaries: $AZRW_CACHE/agents/prometheus-<version>/prometheus.
set -euo pipefail

cache="${AZRW_CACHE:-$HOME/.cache/azrw}"
[ $# -gt 0 ] || { echo "usage: $0 VERSION..." >&2; exit 2; }
command -v go >/dev/null || { echo "error: the Go toolchain is needed (go not on PATH)" >&2; exit 1; }
# One module and build cache for every version (Go's defaults, or GOMODCACHE/GOCACHE when set): a neighbouring
# minor then reuses most of the previous build.
echo "go caches: GOMODCACHE=$(go env GOMODCACHE) GOCACHE=$(go env GOCACHE)"

# Prometheus 2.x/3.x are published as module versions v0.MINOR.PATCH / v0.3MM.PATCH.
module_version() {
  local major minor patch
  IFS=. read -r major minor patch <<<"$1"
  case "$major" in
    2) echo "v0.${minor}.${patch}" ;;
    3) printf 'v0.3%02d.%s\n' "$minor" "$patch" ;;
    *) echo "error: unsupported Prometheus major version in '$1'" >&2; return 1 ;;
  esac
}

# Go's build cache grows by ~1.3 GB per version and is trimmed only of entries unused for days: a full matrix (28
# versions) filled 30 GB and then the disk, killing the builds. Past AZRW_GOCACHE_MAX_GB (default 16) it is
# emptied before the next build, which costs that build its warm start (~40%), not the run.
trim_build_cache() {
  local max=${AZRW_GOCACHE_MAX_GB:-16} gocache used
  gocache=$(go env GOCACHE)
  [ -d "$gocache" ] || return 0
  used=$(du -s --block-size=1G "$gocache" 2>/dev/null | cut -f1)
  if [ "${used:-0}" -gt "$max" ]; then
    echo "go build cache at ${used} GB (> AZRW_GOCACHE_MAX_GB=$max): emptying it before the next build"
    go clean -cache
  fi
}

for version in "$@"; do
  started=$SECONDS
  out="$cache/agents/prometheus-$version"
  bin="$out/prometheus"
  if [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; then
    echo "prometheus $version: cached at $bin"
    continue
  fi
  trim_build_cache
  modver=$(module_version "$version")
  echo "prometheus $version: building from github.com/prometheus/prometheus@$modver (first time takes minutes)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  gomod=$(cd "$work" && GOFLAGS=-mod=mod go mod download -json "github.com/prometheus/prometheus@$modver" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  [ -f "$gomod" ] || { echo "error: could not download github.com/prometheus/prometheus@$modver" >&2; exit 1; }
  {
    echo "module azrw.local/build-prometheus"
    echo
    sed -n 's/^go \([0-9.]*\).*/go \1/p' "$gomod" | head -1
    echo
    echo "require github.com/prometheus/prometheus $modver"
    # `replace` directives do not apply to dependants, so copy them (single-line and block form).
    awk '/^replace \(/{inblock=1; print; next} inblock{print; if ($0 ~ /^\)/) inblock=0; next} /^replace /{print}' "$gomod"
  } >"$work/go.mod"
  cat >"$work/tools.go" <<'GO'
//go:build tools

package tools

import _ "github.com/prometheus/prometheus/cmd/prometheus"
GO
  (
    cd "$work"
    GOFLAGS=-mod=mod go mod tidy >/dev/null 2>&1 || true
    GOFLAGS=-mod=mod go get "github.com/prometheus/prometheus/cmd/prometheus@$modver"
    mkdir -p "$out"
    # Static binary: the container image is FROM scratch plus this file and a CA bundle.
    CGO_ENABLED=0 GOFLAGS=-mod=mod go build -trimpath -o "$bin.tmp" \
      -ldflags "-s -w -X github.com/prometheus/common/version.Version=$version -X github.com/prometheus/common/version.Branch=module -X github.com/prometheus/common/version.Revision=$modver" \
      github.com/prometheus/prometheus/cmd/prometheus
    mv "$bin.tmp" "$bin"
  )
  rm -rf "$work"
  trap - EXIT
  "$bin" --version | head -1
  echo "prometheus $version: built in $((SECONDS - started))s"
done
