#!/usr/bin/env bash
# Installs what the tests and the demo need, and only what is missing (safe to run repeatedly):
# the Debian packages of the local stack, and node_modules when absent or older than package-lock.json.
set -euo pipefail

cd "$(dirname "$0")/.."

APT_PACKAGES=(docker.io docker-registry busybox-static rsync skopeo zip unzip git ca-certificates)

log() { echo "ensure-deps: $*" >&2; }

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }

ensure_apt() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    installed "$pkg" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return
  log "installing ${missing[*]}"
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { log "missing packages ${missing[*]}: run as root or install sudo"; exit 1; }
    sudo=(sudo)
  fi
  # Another process (a parallel job) may be using apt; wait for its lock rather than fail.
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_node() {
  command -v node >/dev/null || { log "Node.js >= 20 is required (https://nodejs.org or apt-get install nodejs)"; exit 1; }
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  [ "$major" -ge 20 ] || { log "Node.js >= 20 is required, found $(node --version)"; exit 1; }
}

# npm ci rewrites node_modules/.package-lock.json; a lock file newer than it means the install is stale.
ensure_node_modules() {
  if [ -f node_modules/.package-lock.json ] && [ ! package-lock.json -nt node_modules/.package-lock.json ]; then
    return
  fi
  log "npm ci"
  npm ci --no-audit --no-fund >&2
}

ensure_apt
ensure_node
ensure_node_modules
