/** AWS naming rules: regions, partitions, IAM role ARNs, CodeBuild names, S3 buckets and keys, KMS keys. */
import { partition } from '@aws-sdk/core/client';
import { shown } from '../shared/shown';

export const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;
const AVAILABILITY_ZONE = /^([a-z]{2}(?:-[a-z]+)+-\d{1,2})[a-z]$/;
const ROLE_ARN = /^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;
export const PROJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{1,254}$/;
export const S3_PREFIX_CHARS = /^[A-Za-z0-9!_.*'()/-]*$/;
/** Parameter Store path of the job tokens jobs pass to their builds by reference; infra grants exactly this path. */
export const JOB_TOKEN_PATH = '/codebuild-image/job-tokens';

/**
 * The SecureString that carries one job's CI_JOB_TOKEN to its builds. Job IDs are unique in a GitLab instance;
 * the project ID keeps the names apart per project (and lets IAM be narrowed to a project's path by hand).
 */
export function jobTokenParameter(projectId: string, jobId: string): string {
  return `${JOB_TOKEN_PATH}/${projectId}/${jobId}`;
}

/** A Secrets Manager reference `id[:json-key[:stage[:version]]]` or a Parameter Store name. */
export const SECRET_REFERENCE = /^[A-Za-z0-9/_+=.@:-]+$/;

export const COMPUTE_TYPES = [
  'BUILD_GENERAL1_SMALL',
  'BUILD_GENERAL1_MEDIUM',
  'BUILD_GENERAL1_LARGE',
  'BUILD_GENERAL1_XLARGE',
  'BUILD_GENERAL1_2XLARGE',
];
export const ENVIRONMENT_TYPES = ['LINUX_CONTAINER', 'ARM_CONTAINER', 'LINUX_GPU_CONTAINER'];

/** Why `region` is not an AWS region, or undefined when the SDK's partition data lists it. */
export function regionProblem(region: string): string | undefined {
  if (REGION.test(region)) {
    if (isKnownRegion(region)) return undefined;
    const near = nearestRegion(region);
    return `${shown(region)} is not in the AWS SDK's list of regions${near ? `; did you mean ${near}?` : ', e.g. eu-west-1'}`;
  }
  const az = AVAILABILITY_ZONE.exec(region);
  return az ? `${shown(region)} is an availability zone; use the region ${az[1]}` : `${shown(region)} is not an AWS region name such as eu-west-1`;
}

/**
 * Whether the SDK's partition data (its maintained copy of AWS's partitions.json) names `region`. For a
 * listed region `partition` adds the region's own entry, its description, to the partition's outputs.
 */
function isKnownRegion(region: string): boolean {
  return 'description' in partition(region);
}

// The SDK answers "is this a region" but does not list them, so the list is found by asking about every
// name of the shape AWS uses: <area>-<direction>-<n>.
const AREAS = ['af', 'ap', 'ca', 'cn', 'eu', 'il', 'me', 'mx', 'sa', 'us', 'us-gov', 'us-iso', 'us-isob', 'us-isof', 'eu-isoe'];
const DIRECTIONS = ['central', 'east', 'north', 'northeast', 'northwest', 'south', 'southeast', 'southwest', 'west'];
let regionList: string[] | undefined;

export function knownRegions(): string[] {
  regionList ??= AREAS.flatMap((a) => DIRECTIONS.flatMap((d) => Array.from({ length: 9 }, (_, i) => `${a}-${d}-${i + 1}`))).filter(isKnownRegion);
  return regionList;
}

/** The known region closest to a misspelt one (at most two edits away), if any. */
function nearestRegion(region: string): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const name of knownRegions()) {
    const distance = editDistance(region, name);
    if (distance <= 2 && (!best || distance < best.distance)) best = { name, distance };
  }
  return best?.name;
}

/** Optimal string alignment distance: insertions, deletions, substitutions and swaps of neighbours. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number) => d[i]?.[j] ?? Infinity;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = v;
    }
  }
  return at(a.length, b.length);
}

export function partitionOf(region: string): string | undefined {
  if (region.startsWith('cn-')) return 'aws-cn';
  if (region.startsWith('us-gov-')) return 'aws-us-gov';
  return /^[a-z]{2}-(?!iso)/.test(region) ? 'aws' : undefined;
}

/** The partition and account of an IAM role ARN, or undefined when `arn` is not one. */
export function parseRoleArn(arn: string): { partition: string; account: string } | undefined {
  const m = ROLE_ARN.exec(arn);
  return m ? { partition: m[1] ?? '', account: m[2] ?? '' } : undefined;
}

/** The default ECR registry host of an account in a region. */
export function ecrRegistry(account: string, region: string): string {
  return `${account}.dkr.ecr.${region}.amazonaws.com${region.startsWith('cn-') ? '.cn' : ''}`;
}

/** Problems with an S3 bucket name, per https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html */
export function bucketNameProblems(name: string): string[] {
  const out: string[] = [];
  if (name.length < 3 || name.length > 63) out.push('must be 3–63 characters long');
  if (/[A-Z]/.test(name)) out.push('must be lower case');
  if (!/^[a-zA-Z0-9.-]*$/.test(name)) out.push('may contain only letters, digits, dots and hyphens');
  if (!/^[a-z0-9](?:.*[a-z0-9])?$/.test(name)) out.push('must start and end with a letter or digit');
  if (name.includes('..')) out.push('must not contain two adjacent dots');
  if (/^\d+\.\d+\.\d+\.\d+$/.test(name)) out.push('must not look like an IP address');
  for (const prefix of ['xn--', 'sthree-', 'amzn-s3-demo-']) if (name.startsWith(prefix)) out.push(`must not start with ${prefix}`);
  for (const suffix of ['-s3alias', '--ol-s3', '.mrap', '--x-s3', '--table-s3']) if (name.endsWith(suffix)) out.push(`must not end with ${suffix}`);
  return out;
}

/** A reserved-capacity fleet, optionally with its version suffix. */
export const FLEET_ARN = /^arn:(aws|aws-cn|aws-us-gov):codebuild:[a-z0-9-]+:\d{12}:fleet\/[A-Za-z0-9][A-Za-z0-9_-]{1,127}(?::[A-Za-z0-9-]+)?$/;

/** A KMS key (`key/<id>`, multi-Region `mrk-…` ids too) or alias ARN; the region signing is asked in is its own. */
export const KMS_KEY_ARN = /^arn:aws[a-z-]*:kms:([a-z]{2}(?:-[a-z]+)+-\d{1,2}):\d{12}:(?:key\/[A-Za-z0-9-]{1,64}|alias\/[A-Za-z0-9/_-]{1,250})$/;

/** The region of a KMS key ARN that matches KMS_KEY_ARN. */
export function kmsKeyRegion(arn: string): string | undefined {
  return KMS_KEY_ARN.exec(arn)?.[1];
}
