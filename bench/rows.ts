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
