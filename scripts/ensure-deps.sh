#!/usr/bin/env bash
# Installs what the tests and the demo need, and only what is missing (safe to run repeatedly):
# the Debian packages of the local stack, the stack's Docker engine, and node_modules when absent or older
# than package-lock.json.
set -euo pipefail

cd "$(dirname "$0")/.."

# openssl: the fake KMS signs and verifies DIGEST messages with `openssl pkeyutl`.
APT_PACKAGES=(runc docker-registry apache2-utils busybox-static qemu-user-static binfmt-support rsync skopeo zip unzip git ca-certificates openssl tinyproxy)

# The stack's engine is CodeBuild's generation (Docker 28.5 with buildx; CodeBuild's images ship 28.5.2 and buildx
# 0.32), which Debian 12 lacks: Debian's unstable suite has it, and its Go binaries run on Debian 12. The packages
# are unpacked into ENGINE_DIR, never installed, so the host's own docker (if any) is untouched. runc comes from
# Debian 12 (unstable's needs a newer glibc). Pinned versions first; if Debian dropped them, the suite's current ones.
ENGINE_DIR=${CBI_ENGINE_DIR:-/opt/codebuild-image/engine}
SID_SUITE=sid
ENGINE_PACKAGES=(docker.io=28.5.2+dfsg4-5 docker-cli=28.5.2+dfsg4-5 docker-buildx=0.29.1+ds1-4 containerd=2.1.9+ds1-5)

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

# apt-get with its own sources list and state, so the host's sources and lists stay as they are.
engine_apt() {
  local state=$1; shift
  apt-get -o Dir::Etc::sourcelist="$state/sources.list" -o Dir::Etc::sourceparts=- \
    -o Dir::State::Lists="$state/lists" -o Dir::Cache="$state/cache" -o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}

# Downloads pinned packages from Debian sid (the suite's current version if Debian dropped the pin) and unpacks
# them into <dir>.new/root, never installing them. <dir>.new/packages holds what was asked for (checked by
# unpacked_ok), <dir>.new/unpacked what Debian had. The caller adds its links and moves <dir>.new to <dir>.
sid_unpack() {
  local dir=$1; shift
  local state
  state="$(mktemp -d)"
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/debs"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $SID_SUITE main" \
    > "$state/sources.list"
  engine_apt "$state" update -qq
  local pkg
  for pkg in "$@"; do
    (cd "$state/debs" && { engine_apt "$state" download -qq "$pkg" 2>/dev/null || engine_apt "$state" download -qq "${pkg%%=*}/$SID_SUITE"; })
  done
  rm -rf "$dir.new" && mkdir -p "$dir.new"
  local deb unpacked
  for deb in "$state"/debs/*.deb; do dpkg-deb -x "$deb" "$dir.new/root"; done
  unpacked="$(for deb in "$state"/debs/*.deb; do dpkg-deb --show --showformat='${Package}=${Version}\n' "$deb"; done | sort)"
  echo "$unpacked" > "$dir.new/unpacked"
  if [ "$unpacked" != "$(printf '%s\n' "$@" | sort)" ]; then
    log "Debian $SID_SUITE no longer has every pinned version; unpacked: $(echo $unpacked)"
  fi
  echo "$*" > "$dir.new/packages"
  rm -rf "$state"
}

# Whether <dir> holds exactly the packages asked for.
unpacked_ok() {
  local dir=$1; shift
  [ "$(cat "$dir/packages" 2>/dev/null)" = "$*" ]
}

ensure_engine() {
  if [ -x "$ENGINE_DIR/bin/dockerd" ] && unpacked_ok "$ENGINE_DIR" "${ENGINE_PACKAGES[@]}"; then return; fi
  log "installing the stack's Docker engine from Debian $SID_SUITE into $ENGINE_DIR"
  sid_unpack "$ENGINE_DIR" "${ENGINE_PACKAGES[@]}"
  local staging="$ENGINE_DIR.new" f
  mkdir -p "$staging/bin" "$staging/cli-plugins"
  for f in containerd containerd-shim-runc-v2 ctr docker docker-init; do ln -s "../root/usr/bin/$f" "$staging/bin/$f"; done
  for f in dockerd docker-proxy; do ln -s "../root/usr/sbin/$f" "$staging/bin/$f"; done
  ln -s /usr/sbin/runc "$staging/bin/runc"
  ln -s ../root/usr/libexec/docker/cli-plugins/docker-buildx "$staging/cli-plugins/docker-buildx"
  "$staging/bin/dockerd" --version >&2
  "$staging/cli-plugins/docker-buildx" version >&2
  rm -rf "$ENGINE_DIR" && mv "$staging" "$ENGINE_DIR"
}

# AWS's own service models (botocore/data/<service>/<version>/service-2.json): the fake validates every request
# against them (stack/fake-aws/models/). Pinned, so a model update is a reviewed change.
MODELS_DIR=${CBI_MODELS_DIR:-/opt/codebuild-image/botocore}
MODELS_PACKAGES=(python3-botocore=1.43.117+repack-1)

ensure_models() {
  unpacked_ok "$MODELS_DIR" "${MODELS_PACKAGES[@]}" && return
  log "installing AWS's service models (${MODELS_PACKAGES[*]}) from Debian $SID_SUITE into $MODELS_DIR"
  sid_unpack "$MODELS_DIR" "${MODELS_PACKAGES[@]}"
  ln -s root/usr/lib/python3/dist-packages/botocore/data "$MODELS_DIR.new/data"
  rm -rf "$MODELS_DIR" && mv "$MODELS_DIR.new" "$MODELS_DIR"
}

# cosign verifies the signatures the job makes with sign_with, as a cluster's admission check would.
COSIGN_DIR=${CBI_COSIGN_DIR:-/opt/codebuild-image/cosign}
COSIGN_PACKAGES=(cosign=3.1.1-2)

ensure_cosign() {
  [ -x "$COSIGN_DIR/bin/cosign" ] && unpacked_ok "$COSIGN_DIR" "${COSIGN_PACKAGES[@]}" && return
  log "installing ${COSIGN_PACKAGES[*]} from Debian $SID_SUITE into $COSIGN_DIR"
  sid_unpack "$COSIGN_DIR" "${COSIGN_PACKAGES[@]}"
  mkdir -p "$COSIGN_DIR.new/bin" && ln -s ../root/usr/bin/cosign "$COSIGN_DIR.new/bin/cosign"
  "$COSIGN_DIR.new/bin/cosign" version >&2
  rm -rf "$COSIGN_DIR" && mv "$COSIGN_DIR.new" "$COSIGN_DIR"
}

# arm64 builds on the stack run under QEMU user emulation: the kernel must hand aarch64 binaries to Debian's
# static qemu (flag F, so it works inside containers), and their base image needs an arm64 busybox.
ARM64_BUSYBOX=${CBI_ARM64_BUSYBOX:-/opt/codebuild-image/arm64/busybox}

ensure_arm64() {
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    log "registering qemu-aarch64 with binfmt_misc"
    cat /usr/lib/binfmt.d/qemu-aarch64.conf > /proc/sys/fs/binfmt_misc/register
  fi
  [ -x "$ARM64_BUSYBOX" ] && return
  log "downloading Debian's arm64 busybox-static into ${ARM64_BUSYBOX%/*}"
  local state
  state="$(mktemp -d)"
  mkdir -p "$state/lists/partial" "$state/cache/archives/partial" "$state/debs"
  echo "deb [arch=arm64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bookworm main" \
    > "$state/sources.list"
  engine_apt "$state" -o APT::Architecture=arm64 -o APT::Architectures::=arm64 update -qq
  (cd "$state/debs" && engine_apt "$state" -o APT::Architecture=arm64 -o APT::Architectures::=arm64 download -qq busybox-static)
  dpkg-deb -x "$state"/debs/busybox-static_*.deb "$state/root"
  mkdir -p "${ARM64_BUSYBOX%/*}"
  install -m 0755 "$state/root/bin/busybox" "$ARM64_BUSYBOX"
  rm -rf "$state"
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
ensure_engine
ensure_models
ensure_cosign
ensure_arm64
ensure_node
ensure_node_modules
