/**
 * How the job signs in to the image's registry for its own registry calls (the index of a multi-platform image,
 * the retag of an unchanged one): ECR with the CI role (ecr:GetAuthorizationToken); GitLab's registry with the
 * job token; a registry of registry_credentials with the credentials it names, read with the CI role (which may
 * read what the builds read: StartBuild could name those references anyway). Other registries: anonymously.
 */
import type { ECRClient } from '@aws-sdk/client-ecr';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { SSMClient } from '@aws-sdk/client-ssm';
import { registryApiActions } from '../aws/permissions';
import { AwsStepError, awsStep, errorName } from '../shared/errors';
import { JOB_TOKEN_USER } from './job-token';
import { RegistryClient, type RegistryCredentials } from './distribution';
import type { RegistryLogin, Settings } from '../inputs/settings';
import { network } from '../shared/network';

/** As in src/aws/clients.ts: each made, with its SDK package loaded, on first use. */
export interface SignInClients {
  ecr: (region: string) => Promise<ECRClient>;
  ssm: () => Promise<SSMClient>;
  secrets: () => Promise<SecretsManagerClient>;
}

/** The registry API of the image's registry, signed in to on its first 401. */
export function registryClient(s: Settings, clients: SignInClients): RegistryClient {
  return new RegistryClient(s.image.registry, { credentials: () => signIn(s, clients), fetch: network().fetch.registry });
}

async function signIn(s: Settings, clients: SignInClients): Promise<RegistryCredentials | undefined> {
  const { image } = s;
  if (image.ecr) return ecrSignIn(image.registry, await clients.ecr(image.ecr.region));
  const login = s.registryLogins.find((l) => l.registry === image.registry);
  if (!login) return undefined;
  if (login.jobToken) return { username: JOB_TOKEN_USER, password: s.gitlab.jobToken ?? '' };
  // The reference is never shown: registry_credentials is never echoed past the `=` (a pasted password). AWS's
  // messages name the resource (AccessDenied: "… on resource: <reference>"), so only the error's name is kept.
  const step = `Reading the credentials registry_credentials names for ${login.registry}`;
  const value = await awsStep(
    step,
    () =>
      readReference(login, clients).catch((e: unknown) => {
        const name = errorName(e) ?? 'Error';
        throw Object.assign(new Error("AWS's message is not shown, as it may name the reference"), { name });
      }),
    () =>
      `The CI role needs ${login.type === 'SECRETS_MANAGER' ? 'secretsmanager:GetSecretValue' : 'ssm:GetParameter'} on it to sign in ` +
      'to the registry for the image index or a retag (infra grants it on SecretArns and ParameterArns).',
  );
  const credentials = parseCredentials(value, login.type);
  if (!credentials) {
    throw new AwsStepError(
      step,
      Object.assign(new Error('no username or no password'), { name: 'CredentialsError' }),
      'Store {"username","password"} in the secret, or username:password in the parameter.',
    );
  }
  return credentials;
}

async function ecrSignIn(registry: string, ecr: ECRClient): Promise<RegistryCredentials> {
  const { GetAuthorizationTokenCommand } = await import('../aws/sdk/ecr');
  const res = await awsStep(
    `Signing in to ${registry}`,
    () => ecr.send(new GetAuthorizationTokenCommand({})),
    () => `The CI role needs ecr:GetAuthorizationToken, and ${registryApiActions.join(', ')} on the repository.`,
  );
  const token = res.authorizationData?.[0]?.authorizationToken ?? '';
  const [username = '', password = ''] = Buffer.from(token, 'base64').toString('utf8').split(':', 2);
  return { username, password };
}

async function readReference(login: RegistryLogin, clients: SignInClients): Promise<string> {
  if (login.type === 'SECRETS_MANAGER') {
    const { GetSecretValueCommand } = await import('../aws/sdk/secrets-manager');
    const secrets = await clients.secrets();
    return (await secrets.send(new GetSecretValueCommand({ SecretId: login.reference }))).SecretString ?? '';
  }
  const { GetParameterCommand } = await import('../aws/sdk/ssm');
  const ssm = await clients.ssm();
  return (await ssm.send(new GetParameterCommand({ Name: login.reference, WithDecryption: true }))).Parameter?.Value ?? '';
}

/**
 * As the build reads them (src/build/build-script.ts, where CodeBuild resolves a secret's json keys): a secret holds
 * `{"username","password"}`; a parameter that JSON or `username:password`. Numbers count as text, as for jq.
 */
export function parseCredentials(value: string, type: RegistryLogin['type']): RegistryCredentials | undefined {
  if (value.startsWith('{')) {
    try {
      const doc = JSON.parse(value) as { username?: unknown; password?: unknown };
      const [username, password] = [doc.username, doc.password].map((v) => (typeof v === 'string' || typeof v === 'number' ? String(v) : ''));
      return username && password ? { username, password } : undefined;
    } catch {
      return undefined;
    }
  }
  if (type === 'SECRETS_MANAGER') return undefined;
  const colon = value.indexOf(':');
  return colon > 0 && colon < value.length - 1 ? { username: value.slice(0, colon), password: value.slice(colon + 1) } : undefined;
}
