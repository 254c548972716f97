#!/usr/bin/env bash
# Runs every check and test, on a fresh machine too: installs what is missing first.
# Usage: npm test            (everything)
#        npm test -- unit    (type-check, lint, dist check and unit tests only)
set -euo pipefail
cd "$(dirname "$0")/.."
scope=${1:-all}

bash scripts/ensure-deps.sh

echo "== type-check"
npx tsc --noEmit
echo "== lint"
npx eslint .
echo "== dist/ is a fresh build of src/"
bash scripts/check-dist.sh

projects=(--project unit)
[ "$scope" = all ] && projects+=(--project e2e)
results=$(mktemp)
trap 'rm -f "$results"' EXIT
status=0
npx vitest run "${projects[@]}" --reporter=default --reporter=json --outputFile.json="$results" || status=$?
# One plain closing line that any CI reader understands.
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  console.log(`tests: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${r.numPendingTests + r.numTodoTests} skipped`);
' "$results" || true
exit "$status"
