#!/usr/bin/env node
// The closing lines of `npm test`, from vitest's JSON report: the counts, then the ten slowest tests (where the
// suite's time goes) with their durations and files.
// Usage: node scripts/test-summary.mjs <report.json>
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const SLOWEST = 10;

/** The `tests:` line and the slowest tests of a vitest JSON report, as lines. */
export function summary(report, root = process.cwd()) {
  const skipped = report.numPendingTests + report.numTodoTests;
  const tests = report.testResults.flatMap((file) =>
    file.assertionResults.map((t) => ({ name: t.fullName, ms: t.duration ?? 0, file: relative(root, file.name) })),
  );
  const slowest = tests.sort((a, b) => b.ms - a.ms).slice(0, SLOWEST);
  return [
    `tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${skipped} skipped`,
    ...(slowest.length ? [`${slowest.length} slowest:`] : []),
    ...slowest.map((t) => `${(t.ms / 1000).toFixed(1).padStart(7)} s  ${t.file}  ${t.name}`),
  ];
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const report = JSON.parse(readFileSync(process.argv[2], 'utf8'));
  console.log(summary(report).join('\n'));
}
