#!/usr/bin/env bash
# Runs every check and test, on a fresh machine too: installs what is missing first.
# Usage: npm test            (everything)
#        npm test -- unit    (type-check, lint, dist check and unit tests only)
# Ends with the counts, the ten slowest tests and the seconds each phase took.
set -euo pipefail
cd "$(dirname "$0")/.."
scope=${1:-all}

times=()
# Runs a phase under its heading and notes how long it took.
phase() {
  local name=$1 start=$SECONDS status=0
  shift
  echo "== $name"
  "$@" || status=$?
  times+=("$name $((SECONDS - start)) s")
  return "$status"
}

phase "dependencies" bash scripts/ensure-deps.sh
# Both remember what they checked in node_modules/.cache: unchanged files are not checked again.
phase "type-check" npx tsc --noEmit --incremental --tsBuildInfoFile node_modules/.cache/tsc.tsbuildinfo
phase "lint" npx eslint --cache --cache-location node_modules/.cache/eslint/ .
phase "dist/ is a fresh build of src/" bash scripts/check-dist.sh

# Without the load test, the files that run beside it are plain unit files (vitest.config.ts).
if [ "$scope" = all ]; then
  projects=(--project unit --project unit-beside-load --project e2e --project e2e-load)
else
  export CBI_UNIT_ONLY=1
  projects=(--project unit)
fi
results=$(mktemp)
trap 'rm -f "$results"' EXIT
status=0
phase "tests" npx vitest run "${projects[@]}" --reporter=default --reporter=json --outputFile.json="$results" || status=$?
# Plain closing lines that any CI reader understands.
node scripts/test-summary.mjs "$results" || true
printf 'phases: %s' "${times[0]}"; printf '; %s' "${times[@]:1}"; echo
exit "$status"
