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

# The checks run beside the tests, whose first seconds go to starting stacks (waiting on daemons, not cores); each
# one's output is shown after the tests', under its heading, and any that fails fails the run.
checks=$(mktemp -d)
results="$checks/results.json"
trap 'rm -rf "$checks"' EXIT
names=()
check() {
  local out="$checks/${#names[@]}"
  names+=("$1")
  shift
  (
    start=$SECONDS status=0
    "$@" > "$out.log" 2>&1 || status=$?
    echo "$status $((SECONDS - start))" > "$out.status"
  ) &
}
# Both remember what they checked in node_modules/.cache: unchanged files are not checked again.
check "type-check" npx tsc --noEmit --incremental --tsBuildInfoFile node_modules/.cache/tsc.tsbuildinfo
check "lint" npx eslint --cache --cache-location node_modules/.cache/eslint/ .
check "dist/ is a fresh build of src/" bash scripts/check-dist.sh

projects=(--project unit)
[ "$scope" = all ] && projects+=(--project e2e --project e2e-load)
status=0
phase "tests" npx vitest run "${projects[@]}" --reporter=default --reporter=json --outputFile.json="$results" || status=$?
wait
for i in "${!names[@]}"; do
  name=${names[$i]} code=1 seconds=0
  if [ -r "$checks/$i.status" ]; then read -r code seconds < "$checks/$i.status"; fi
  echo "== $name"
  cat "$checks/$i.log" 2>/dev/null || true
  times+=("$name $seconds s")
  if [ "$code" != 0 ]; then echo "$name failed (exit $code)"; status=1; fi
done
# Plain closing lines that any CI reader understands.
node scripts/test-summary.mjs "$results" || true
printf 'phases: %s' "${times[0]}"; printf '; %s' "${times[@]:1}"; echo
exit "$status"
