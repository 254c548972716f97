/** The subset of vitest's JSON report the summary reads. */
export interface JsonReport {
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  testResults: { name: string; assertionResults: { fullName: string; duration?: number | null }[] }[];
}
/** The `tests:` line and the ten slowest tests with their seconds and files (relative to `root`). */
export function summary(report: JsonReport, root?: string): string[];
