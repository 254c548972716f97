import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { CodeBuildClient } from '@aws-sdk/client-codebuild';
import type { ECRClient } from '@aws-sdk/client-ecr';
import type { KMSClient } from '@aws-sdk/client-kms';
import { S3Client } from '@aws-sdk/client-s3';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { doesIdentityRequireRefresh, isIdentityExpired, memoizeIdentityProvider } from '@smithy/core';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { version } from '../../package.json';
import { network, type AwsHandlerOptions } from '../shared/network';

export interface Clients {
  s3: S3Client;
  codebuild: CodeBuildClient;
  /** CodeBuild for the calls made once per job (StartBuild, StopBuild, finding a build): more patient retries. */
  codebuildOnce: CodeBuildClient;
  logs: CloudWatchLogsClient;
  /** Logs for StartLiveTail alone: one attempt, as polling takes over when a session cannot start. */
  liveTail: CloudWatchLogsClient;
  // The clients below serve only some jobs: each is made on first use, its SDK package loaded then (import() of
  // ./sdk/), so a job that never calls it never compiles it (dist/index.js compiles an import()ed module on demand).
  /** ECR in the image registry's region, for the multi-platform index and the skip_unchanged retag (src/registry/signin.ts). */
  ecr: (region: string) => Promise<ECRClient>;
  /** KMS in the signing key's region (sign_with, src/sign/kms-signer.ts). */
  kms: (region: string) => Promise<KMSClient>;
  /** Parameter Store: the job token's short-lived SecureString (src/registry/job-token.ts), registry credentials (src/registry/signin.ts). */
  ssm: () => Promise<SSMClient>;
  /** Secrets Manager: registry credentials the job signs in with (src/registry/signin.ts). */
  secrets: () => Promise<SecretsManagerClient>;
  /** The shared, memoized credentials; call it to resolve them up front. */
  credentials: () => Promise<AwsCredentialIdentity>;
}

/**
 * Retries for calls made once per job (AssumeRoleWithWebIdentity, StartBuild, StopBuild). Losing one fails the
 * job, so they ride out longer runs of throttling, 5xx answers and resets than the SDK's default of 3
 * attempts: 8 attempts with the SDK's backoff (exponential with jitter, at most 20 s apart, about a minute
 * of waiting in all), and each attempt cut after 30 s without an answer (`throwOnRequestTimeout`: without it the
 * SDK only warns). StartBuild's idempotency token makes its retries safe: a retry of a request that did arrive
 * returns the same build.
 */
export const ONCE_PER_JOB = { maxAttempts: 8 } as const;
const ONCE_PER_JOB_REQUEST = { requestTimeout: 30_000, throwOnRequestTimeout: true } as const;

/**
 * The request handler of every AWS client: the job's proxy, CA bundle and connect and idle deadlines
 * (src/shared/network.ts), and for the calls made once per job their 30 s cut.
 */
export function requestHandler(kind: 'polling' | 'once' = 'polling', net: AwsHandlerOptions = network().awsHandler) {
  // A request may set its own `requestTimeout` (HeadObject, StopBuild on cancellation): an error, not a warning.
  return kind === 'once' ? { ...net, ...ONCE_PER_JOB_REQUEST } : { ...net, throwOnRequestTimeout: true };
}

/**
 * Builds every AWS client in one place. Endpoints come only from the SDK's standard configuration
 * (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`), which the local stack uses.
 */
export function createClients(region: string, provider: AwsCredentialIdentityProvider, net: AwsHandlerOptions = network().awsHandler): Clients {
  // One memoized provider for all clients, so the web identity is exchanged once, not once per client.
  const memoized = memoizeIdentityProvider(provider, isIdentityExpired, doesIdentityRequireRefresh);
  if (!memoized) throw new Error('No AWS credential provider');
  const credentials = () => memoized();
  quietNodeVersionWarning();
  const config = { region, credentials, customUserAgent: `codebuild-image/${version}`, requestHandler: requestHandler('polling', net) };
  const once = { ...ONCE_PER_JOB, requestHandler: requestHandler('once', net) };
  return {
    s3: new S3Client(config),
    codebuild: new CodeBuildClient({ ...config, ...POLLING_RETRY }),
    codebuildOnce: new CodeBuildClient({ ...config, ...once }),
    logs: new CloudWatchLogsClient({ ...config, ...POLLING_RETRY, disableHostPrefix: customLogsEndpoint() }),
    liveTail: new CloudWatchLogsClient({ ...config, maxAttempts: 1, disableHostPrefix: customLogsEndpoint() }),
    ecr: perRegion(async (ecrRegion) => new (await import('./sdk/ecr')).ECRClient({ ...config, region: ecrRegion, ...once })),
    kms: perRegion(async (kmsRegion) => new (await import('./sdk/kms')).KMSClient({ ...config, region: kmsRegion, ...once })),
    ssm: madeOnce(async () => new (await import('./sdk/ssm')).SSMClient({ ...config, ...once })),
    secrets: madeOnce(async () => new (await import('./sdk/secrets-manager')).SecretsManagerClient({ ...config, ...once })),
    credentials,
  };
}

/**
 * The one retry layer for the calls that follow a build (BatchGetBuilds, GetLogEvents, StartLiveTail): the
 * SDK retries a throttled or failed call with jittered back-off, and its adaptive mode also lowers the
 * client's own request rate after throttling. The follow loop only counts polls that failed despite this.
 */
export const POLLING_RETRY = { retryMode: 'adaptive', maxAttempts: 5 } as const;

/**
 * StartLiveTail goes to a `stream-` prefixed host (stream-logs.<region>.amazonaws.com). A configured
 * endpoint (the local stack, a proxy, LocalStack) is one host that answers every operation, and the
 * prefixed name would not even resolve, so the prefix is dropped there.
 */
function customLogsEndpoint(): boolean {
  return Boolean(process.env.AWS_ENDPOINT_URL_CLOUDWATCH_LOGS || process.env.AWS_ENDPOINT_URL);
}

/**
 * The SDK warns on every Node below 22 that its releases after January 2027 need Node 22, as a 7-line
 * NodeVersionSupportWarning in the job log. The job cannot act on it (the template's job_image chooses
 * Node), so only that warning is turned off, through the SDK's own switch; every other warning stays.
 */
function quietNodeVersionWarning(): void {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
}

/**
 * One client per region, made on first use and never destroyed: every client shares the job's agents
 * (src/shared/network.ts), and destroying one would cut the requests the others have in flight.
 */
function perRegion<C>(make: (region: string) => C): (region: string) => C {
  const made = new Map<string, C>();
  return (region) => {
    let client = made.get(region);
    if (!client) made.set(region, (client = make(region)));
    return client;
  };
}

/** A client made on first use, then the same one (a failed first make, e.g. its chunk's, fails every use after). */
function madeOnce<C>(make: () => C): () => C {
  let made: C | undefined;
  return () => (made ??= make());
}
