import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { CodeBuildClient } from '@aws-sdk/client-codebuild';
import { S3Client } from '@aws-sdk/client-s3';
import { doesIdentityRequireRefresh, isIdentityExpired, memoizeIdentityProvider } from '@smithy/core';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { version } from '../package.json';

export interface Clients {
  s3: S3Client;
  codebuild: CodeBuildClient;
  logs: CloudWatchLogsClient;
  /** The shared, memoized credentials; call it to resolve them up front. */
  credentials: () => Promise<AwsCredentialIdentity>;
}

/**
 * Builds every AWS client in one place. Endpoints come only from the SDK's standard configuration
 * (`AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>`), which the local stack uses.
 */
export function createClients(region: string, provider: AwsCredentialIdentityProvider): Clients {
  // One memoized provider for all clients, so the web identity is exchanged once, not once per client.
  const memoized = memoizeIdentityProvider(provider, isIdentityExpired, doesIdentityRequireRefresh);
  if (!memoized) throw new Error('No AWS credential provider');
  const credentials = () => memoized();
  const config = { region, credentials, customUserAgent: `codebuild-image/${version}` };
  return {
    s3: new S3Client(config),
    codebuild: new CodeBuildClient(config),
    logs: new CloudWatchLogsClient(config),
    credentials,
  };
}
