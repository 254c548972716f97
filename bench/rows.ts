/** One line of bench/RESULTS.md: a measured figure beside its target. */
export interface BenchRow {
  /** The issue area, e.g. "packing", "job log", "warm rebuild". */
  group: string;
  metric: string;
  /** The measured figure as printed, e.g. "0.42× zip -6". */
  value: string;
  /** The target as printed, e.g. "≤ 0.5". */
  target: string;
  met: boolean;
}

/** Runs one module on its own (`npx tsx bench/<module>.ts`) and prints its rows as a table. */
export function printAlone(measure: () => Promise<BenchRow[]>): void {
  measure().then((rows) => {
    process.stdout.write('| Metric | Measured | Target | Met |\n| --- | --- | --- | --- |\n');
    for (const r of rows) process.stdout.write(`| ${r.metric} | ${r.value} | ${r.target} | ${r.met ? 'yes' : 'no'} |\n`);
  }, (e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
