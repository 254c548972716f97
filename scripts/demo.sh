#!/usr/bin/env bash
# npm run demo: builds examples/hello through the component against the local stack (root, Debian, Node >= 20).
# Everything it starts is stopped on exit, also when interrupted.
set -euo pipefail

cd "$(dirname "$0")/.."

bash scripts/ensure-deps.sh

# scripts/demo.ts stops its stack itself; this catches what a killed demo.ts left behind (by PID files).
trap 'npx --no-install tsx stack/cli.ts down --dir .stack/demo >/dev/null 2>&1 || true' EXIT

npx --no-install tsx scripts/demo.ts "$@"
