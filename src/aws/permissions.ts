/**
 * Every AWS call the program makes, with the IAM actions that authorise it: the permissions of the CI role.
 * infra/cloudformation.yml grants the CI role exactly these actions, and infra/permissions.test.ts checks that the
 * code calls no SDK command missing here, that nothing listed here goes unused, and that the role matches.
 */

export interface AwsCall {
  /** IAM actions the call needs. */
  actions: readonly string[];
  /** Modules that make the call (where the drift test looks for it). */
  usedIn: readonly string[];
  /** Why these actions, when the name does not say it. */
  note?: string;
}

/** SDK v3 commands (`new <Name>Command(...)`) and lib-storage's `Upload`. */
export const awsCalls = {
  HeadObjectCommand: {
    actions: ['s3:GetObject'],
    usedIn: ['src/context/upload.ts'],
    note:
      'HeadObject is authorised by s3:GetObject. Without s3:ListBucket (not granted: it would let jobs list every ' +
      'key in the bucket) S3 answers 403 instead of 404 for a missing key, so the upload treats 403 and 404 alike ' +
      'as "not uploaded yet"; a real permission problem then surfaces on the PutObject that follows.',
  },
  Upload: {
    actions: ['s3:PutObject', 's3:AbortMultipartUpload'],
    usedIn: ['src/context/upload.ts'],
    note:
      'lib-storage sends PutObject, or CreateMultipartUpload/UploadPart/CompleteMultipartUpload (all authorised ' +
      'by s3:PutObject) and AbortMultipartUpload when a multipart upload fails. It does not list parts.',
  },
  StartBuildCommand: { actions: ['codebuild:StartBuild'], usedIn: ['src/build/codebuild.ts'] },
  StopBuildCommand: { actions: ['codebuild:StopBuild'], usedIn: ['src/build/codebuild.ts'] },
  BatchGetBuildsCommand: { actions: ['codebuild:BatchGetBuilds'], usedIn: ['src/build/codebuild.ts', 'src/follow/follower.ts'] },
  ListBuildsForProjectCommand: {
    actions: ['codebuild:ListBuildsForProject'],
    usedIn: ['src/build/codebuild.ts'],
    note: '`index.js stop` finds a build whose StartBuild answer never arrived (the job was killed) by its job marker.',
  },
  GetLogEventsCommand: { actions: ['logs:GetLogEvents'], usedIn: ['src/follow/log-reader.ts'] },
  StartLiveTailCommand: {
    actions: ['logs:StartLiveTail'],
    usedIn: ['src/follow/live-tail.ts'],
    note: 'Optional: without it the program follows the log by polling GetLogEvents, at a higher request rate.',
  },
  GetAuthorizationTokenCommand: {
    actions: ['ecr:GetAuthorizationToken'],
    usedIn: ['src/registry/signin.ts'],
    note: 'Signs in to an ECR registry to put the image index of a multi-platform image or retag an unchanged one (see registryApiActions).',
  },
  PutParameterCommand: {
    actions: ['ssm:PutParameter'],
    usedIn: ['src/registry/job-token.ts'],
    note: "Writes the job token for GitLab's registry to a SecureString under JOB_TOKEN_PATH that the build reads by reference; granted with JobTokens=true.",
  },
  DeleteParameterCommand: { actions: ['ssm:DeleteParameter'], usedIn: ['src/registry/job-token.ts'] },
  GetParameterCommand: {
    actions: ['ssm:GetParameter'],
    usedIn: ['src/registry/signin.ts'],
    note: 'Reads registry credentials of registry_credentials (ssm:) to sign in for a multi-platform index or a skip_unchanged retag; granted on ParameterArns.',
  },
  GetSecretValueCommand: {
    actions: ['secretsmanager:GetSecretValue'],
    usedIn: ['src/registry/signin.ts'],
    note: 'Reads registry credentials of registry_credentials (secretsmanager:) likewise; granted on SecretArns.',
  },
  GetPublicKeyCommand: {
    actions: ['kms:GetPublicKey'],
    usedIn: ['src/sign/kms-signer.ts'],
    note: "With sign_with: the key's spec and public key, which check a signature already stored; granted on SigningKeyArns.",
  },
  SignCommand: { actions: ['kms:Sign'], usedIn: ['src/sign/kms-signer.ts'], note: 'With sign_with: signs the payload of each pushed digest; granted on SigningKeyArns.' },
} as const satisfies Record<string, AwsCall>;

/**
 * The registry API calls of src/registry/distribution.ts, which IAM authorises per ECR repository: reading manifests
 * (BatchGetImage) and blobs (GetDownloadUrlForLayer), putting the index and signatures (PutImage), and uploading a
 * signature's blobs (BatchCheckLayerAvailability, InitiateLayerUpload, UploadLayerPart, CompleteLayerUpload).
 */
export const registryApiActions = [
  'ecr:BatchCheckLayerAvailability',
  'ecr:BatchGetImage',
  'ecr:CompleteLayerUpload',
  'ecr:GetDownloadUrlForLayer',
  'ecr:InitiateLayerUpload',
  'ecr:PutImage',
  'ecr:UploadLayerPart',
] as const;

/**
 * Credential providers that exchange the GitLab ID token. Their STS call is unsigned: the role's trust policy, not
 * its permissions, allows it.
 */
export const webIdentityProviders = ['fromWebToken', 'fromTokenFile', 'AssumeRoleWithWebIdentityCommand'] as const;
export const trustPolicyAction = 'sts:AssumeRoleWithWebIdentity';

/** The CI role's permissions: every action of every call, sorted, without duplicates. */
export function ciRoleActions(): string[] {
  const all = [...Object.values(awsCalls).flatMap((c: AwsCall) => c.actions), ...registryApiActions];
  return [...new Set(all)].sort();
}
