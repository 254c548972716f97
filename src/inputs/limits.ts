/**
 * Limits of AWS and of the build host that AWS's API models do not carry, each written down once with its source,
 * and the job's own caps that keep what it sends inside them. The input checks refuse a value that would cross one
 * before any AWS call; the fake (stack/fake-aws/limits.ts, held equal by test/unit/limits.test.ts) refuses them as
 * AWS does. README.md's "Limits" is the table for users.
 */

export interface Limit {
  /** The most AWS (or the build host) takes. */
  readonly max: number;
  /** What is counted, for messages, e.g. "characters in one CodeBuild environment variable". */
  readonly what: string;
  /** Where the number comes from. */
  readonly source: string;
}

/** AWS's and the build host's limits. */
export const AwsLimits = {
  /** StartBuild: InvalidInputException "EnvironmentVariable should be at most 4096 characters". */
  variableValue: {
    max: 4096,
    what: 'characters in one CodeBuild environment variable',
    source: 'https://github.com/wolfeidau/buildkite-serverless-agent/issues/35',
  },
  /** StartBuild's buildspecOverride (undocumented). */
  inlineBuildspec: {
    max: 25_600,
    what: 'characters in an inline buildspec',
    source: 'https://github.com/aws/aws-cdk/pull/14974',
  },
  /** The context archive's key, which sourceLocationOverride carries after the bucket. */
  s3Key: {
    max: 1024,
    what: 'bytes in an S3 object key',
    source: 'https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-keys.html',
  },
  /** StartLiveTail answers LimitExceededException over it; each build the job follows holds one session. */
  liveTailSessions: {
    max: 15,
    what: 'concurrent Live Tail sessions in an account',
    source: 'https://docs.aws.amazon.com/AmazonCloudWatch/latest/logs/cloudwatch_limits_cwl.html',
  },
  /**
   * Every process of the build gets every variable: Linux starts none whose arguments and environment exceed a
   * quarter of the stack limit, 2 MiB with the usual 8 MiB ("Argument list too long").
   */
  processEnvironment: {
    max: 2 * 1024 * 1024,
    what: 'bytes of arguments and environment of one process on the build host',
    source: 'https://man7.org/linux/man-pages/man2/execve.2.html',
  },
} as const satisfies Record<string, Limit>;

/**
 * The job's caps on list inputs and names, so that the variables it joins from them (CBI_TAGS, CBI_BUILD_ARG_NAMES,
 * CBI_LOGIN_REGISTRIES, CBI_ECR_REGISTRIES) and its generated buildspec stay inside AwsLimits with room to spare
 * (test/unit/limits.test.ts checks the worst case they allow).
 */
export const JobLimits = {
  tags: 25,
  /** build_args and secret_build_args together. */
  buildArgs: 50,
  /** Characters in a build arg name or digest_variable. */
  variableName: 64,
  registryCredentials: 10,
  ecrRegistries: 10,
  /** Characters in a registry host with its port (a DNS name has at most 253). */
  registryHost: 255,
  /** Characters in s3_prefix: the context's key, `<prefix>/<64 hex>.zip`, stays within AwsLimits.s3Key. */
  s3Prefix: 900,
  /**
   * Bytes of the variables StartBuild carries (names and values): a quarter of processEnvironment, since docker
   * buildx gets the build args twice (CBI_ARG_<NAME> and <NAME>) beside the build script and CodeBuild's own.
   */
  environmentBytes: 512 * 1024,
} as const;

/** `n` with thousands separators, as the messages and the README write limits. */
export function formatCount(n: number): string {
  return n.toLocaleString('en-US');
}

/** "at most 4,096 characters in one CodeBuild environment variable" */
export function atMost(limit: Limit): string {
  return `at most ${formatCount(limit.max)} ${limit.what}`;
}
