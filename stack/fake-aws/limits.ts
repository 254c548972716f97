/**
 * AWS's limits that its API models do not carry, refused by the fake as AWS refuses them. The numbers and their
 * sources are the program's (src/inputs/limits.ts AwsLimits); test/unit/limits.test.ts holds these equal to them.
 */
export const FakeLimits = {
  /** StartBuild: one environment variable's value. */
  variableValue: 4096,
  /** StartBuild: an inline buildspecOverride. */
  inlineBuildspec: 25_600,
  /** StartLiveTail: sessions open at once in the account. */
  liveTailSessions: 15,
} as const;
