// Where the build runs in AWS: aws_region, role_arn, id_token_variable (checked against oidc_audience),
// project_name, s3_bucket and s3_prefix.
import { bucketNameProblems, parseRoleArn, partitionOf, PROJECT_NAME, regionProblem, S3_PREFIX_CHARS } from './aws-names';
import { idTokenProblem } from './id-token';
import { JobLimits } from './limits';
import { Inputs, VARIABLE_NAME } from './names';
import type { Problems } from './problems';
import { shown } from '../shared/shown';

/** aws_region, or else AWS_REGION, or else AWS_DEFAULT_REGION; a problem says which one the value came from. */
export function readRegion(p: Problems, given: string, env: NodeJS.ProcessEnv): string {
  const fallback = ['AWS_REGION', 'AWS_DEFAULT_REGION'].find((name) => env[name]?.trim());
  const region = given || (fallback && env[fallback]?.trim()) || '';
  if (!region) p.add(Inputs.AwsRegion, 'is required: set aws_region (or AWS_REGION) to the region of the CodeBuild project, e.g. eu-west-1');
  const problem = region && regionProblem(region);
  if (problem) p.add(Inputs.AwsRegion, given || !fallback ? problem : `${problem} (the value comes from ${fallback}, since aws_region is empty)`);
  return region;
}

export function readRoleArn(p: Problems, arn: string, region: string): { arn: string; account: string } | undefined {
  if (!arn) return undefined;
  const role = parseRoleArn(arn);
  if (!role) {
    p.add(Inputs.RoleArn, `${shown(arn)} is not an IAM role ARN; use the form arn:aws:iam::<12-digit account>:role/<name>`);
    return undefined;
  }
  const expected = partitionOf(region);
  if (expected && role.partition !== expected) {
    p.add(Inputs.RoleArn, `${shown(arn)} is in partition ${role.partition} but region ${shown(region)} is in ${expected}; use arn:${expected}:iam::…`);
  }
  return { arn, account: role.account };
}

/** The token is checked against oidc_audience only when that input is given (the template always gives it). */
export function readIdToken(p: Problems, env: NodeJS.ProcessEnv, variable: string, roleArn: string, audience: string): string | undefined {
  if (!VARIABLE_NAME.test(variable)) {
    p.add(Inputs.IdTokenVariable, `${shown(variable)} is not a variable name; use the name of the job's id_tokens entry, e.g. GITLAB_OIDC_TOKEN`);
    return undefined;
  }
  // Without role_arn the token is unused: the template always asks for one, and an empty role_arn means
  // "use the runner's own AWS credentials" (instance profile, IRSA, environment keys).
  const token = (roleArn && env[variable]?.trim()) || undefined;
  if (!token && roleArn) {
    p.add(Inputs.IdTokenVariable, `$${variable} is empty, so role ${shown(roleArn)} cannot be assumed: add \`id_tokens: ${variable}: {aud: …}\` to the job, or clear role_arn to use the runner's AWS credentials`);
  }
  // Never echo the token: only what is wrong with it is reported.
  const problem = token && idTokenProblem(token, audience || undefined);
  if (problem) p.add(Inputs.IdTokenVariable, `$${variable} ${problem}`);
  return token;
}

export function readProjectName(p: Problems, name: string): string {
  if (!name) p.add(Inputs.ProjectName, 'is required: set it to the name of the shared CodeBuild project');
  else if (!PROJECT_NAME.test(name)) p.add(Inputs.ProjectName, `${shown(name)} is not a CodeBuild project name (2–255 characters: letters, digits, _ and -, starting with a letter or digit)`);
  return name;
}

export function readBucket(p: Problems, given: string, account: string | null | undefined, region: string): string {
  if (!given && account === null) return '';
  const name = given || (account && region ? `codebuild-image-${account}-${region}` : '');
  if (!name) {
    p.add(Inputs.S3Bucket, 'is required when role_arn is not set (the default codebuild-image-<account>-<region> comes from the role\'s account)');
    return '';
  }
  const problems = bucketNameProblems(name);
  if (problems.length > 0) {
    const what = given ? shown(name) : `the default bucket name ${shown(name)}`;
    p.add(Inputs.S3Bucket, `${what} is not a valid S3 bucket name: it ${problems.join('; ')}`);
  }
  return name;
}

export function readS3Prefix(p: Problems, raw: string): string {
  // A trailing / is the usual way to write a prefix; a leading one would start every key with an empty segment.
  const prefix = raw.replace(/\/+$/g, '');
  const segments = prefix === '' ? [] : prefix.split('/');
  if (prefix.startsWith('/')) p.add(Inputs.S3Prefix, `${shown(raw)} starts with /, but S3 keys do not: use ${shown(prefix.replace(/^\/+/, '') || 'contexts')}`);
  else if (!S3_PREFIX_CHARS.test(prefix)) p.add(Inputs.S3Prefix, `${shown(raw)} may contain only letters, digits, / and !_.*'()-`);
  else if (segments.some((s) => s === '' || s === '.' || s === '..')) p.add(Inputs.S3Prefix, `${shown(raw)} must not contain empty, . or .. path segments`);
  else if (prefix.length > JobLimits.s3Prefix) p.add(Inputs.S3Prefix, `is ${prefix.length} characters long; keep it under ${JobLimits.s3Prefix}`);
  return prefix;
}
