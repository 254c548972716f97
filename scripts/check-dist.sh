#!/usr/bin/env bash
# Fails when the committed dist/ differs from a fresh build of src/ (like actions/checkout's check-dist).
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
node scripts/bundle.mjs "$out"
# -q: name the differing files; the bundle is minified, so a line diff would print megabytes.
if ! diff -rq "$out" dist; then
  echo "dist/ is stale: run 'npm run build' and commit dist/ and templates/." >&2
  exit 1
fi
node scripts/stamp-template.mjs --check
echo "dist/ matches src/, and templates/build.yml pins its sha256"
