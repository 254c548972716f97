/** AWS naming rules: regions, partitions, IAM role ARNs, CodeBuild names and S3 buckets and keys. */

export const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;
const AVAILABILITY_ZONE = /^([a-z]{2}(?:-[a-z]+)+-\d{1,2})[a-z]$/;
const ROLE_ARN = /^arn:(aws|aws-cn|aws-us-gov):iam::(\d{12}):role\/(?:[\w+=,.@-]+\/)*[\w+=,.@-]{1,64}$/;
export const PROJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{1,254}$/;
export const S3_PREFIX_CHARS = /^[A-Za-z0-9!_.*'()/-]*$/;
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

/** Why `region` is not a region name, or undefined when it has the shape of one. */
export function regionProblem(region: string): string | undefined {
  if (REGION.test(region)) return undefined;
  const az = AVAILABILITY_ZONE.exec(region);
  return az ? `"${region}" is an availability zone; use the region ${az[1]}` : `"${region}" is not an AWS region name such as eu-west-1`;
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
