// The job token's SecureString (src/registry/job-token.ts) and the job's own registry sign-in (src/registry/signin.ts), with the
// real SDK against the fake's Parameter Store and Secrets Manager, and a real docker-registry that requires a user.
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECRClient } from '@aws-sdk/client-ecr';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopPid } from '../../stack/process';
import { type Registry, startRegistry } from '../../stack/registry';
import { AwsStepError } from '../../src/shared/errors';
import { deleteJobToken, putJobToken } from '../../src/registry/job-token';
import { RegistryClient } from '../../src/registry/distribution';
import { parseCredentials, registryClient } from '../../src/registry/signin';
import type { RegistryLogin, Settings } from '../../src/inputs/settings';
import { memoryOutput } from '../helpers/output';
import { settingsFixture } from '../helpers/settings-fixture';
import { startStack, STATIC_CREDENTIALS, type Stack } from './fake-support';

const TOKEN = 'glcbt-64_Jt0k3n-value-9f2c';
const USER = { username: 'builder', password: 'Pw-s1gn-in-4a7e' };
let stack: Stack;
let registry: Registry;
let registryDir: string;
let ssm: SSMClient;
let secrets: SecretsManagerClient;

beforeAll(async () => {
  registryDir = mkdtempSync(join(tmpdir(), 'job-token-test-'));
  [stack, registry] = await Promise.all([
    startStack({ secrets: { 'ci/registry': JSON.stringify(USER) }, parameters: { '/ci/registry': `${USER.username}:${USER.password}` } }),
    startRegistry(registryDir, { auth: [USER, { username: 'gitlab-ci-token', password: TOKEN }] }),
  ]);
  ssm = new SSMClient({ credentials: STATIC_CREDENTIALS, maxAttempts: 1 });
  secrets = new SecretsManagerClient({ credentials: STATIC_CREDENTIALS, maxAttempts: 1 });
});
afterAll(async () => {
  await stack?.stop();
  if (registry) await stopPid(registry.daemon.pid);
  rmSync(registryDir, { recursive: true, force: true });
});

/**
 * A registry that answers as GitLab's does: 401 with a Bearer challenge naming its token service (here, itself),
 * which gives a token for a scope to `user` only; manifests are never found, and puts are accepted.
 */
async function tokenServiceRegistry(user: { username: string; password: string }) {
  const scopes: string[] = [];
  const basic = `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/jwt/auth') {
      const scope = url.searchParams.get('scope') ?? '';
      if (req.headers.authorization !== basic || url.searchParams.get('service') !== 'container_registry') return void res.writeHead(401).end();
      scopes.push(scope);
      return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `t-${scope}` }));
    }
    const scope = `repository:group/app:${req.method === 'PUT' ? 'push,pull' : 'pull'}`;
    if (req.headers.authorization !== `Bearer t-${scope}`) {
      const realm = `http://${req.headers.host}/jwt/auth`;
      return void res.writeHead(401, { 'www-authenticate': `Bearer realm="${realm}",service="container_registry",scope="${scope}"` }).end();
    }
    res.writeHead(req.method === 'PUT' ? 201 : 404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { host: `127.0.0.1:${port}`, scopes, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const PARAMETER = '/codebuild-image/job-tokens/42/2002';
const jobTokenLogin: RegistryLogin = { registry: 'registry.gitlab.example.com', type: 'PARAMETER_STORE', reference: PARAMETER, jobToken: true };
const withToken = (logins: RegistryLogin[] = [jobTokenLogin]) => settingsFixture({ registryLogins: logins, gitlab: { ...settingsFixture().gitlab, jobToken: TOKEN } });
/** The SSM client as the job's clients give it: made on first use. */
const lazySsm = async () => ssm;
const value = async (name: string) => (await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }))).Parameter?.Value;

describe('the job token SecureString', () => {
  it('is written as gitlab-ci-token:<token> for the build to read, and deleted after', async () => {
    const out = memoryOutput();
    await putJobToken(lazySsm, withToken(), out);
    expect(await value(PARAMETER)).toBe(`gitlab-ci-token:${TOKEN}`);
    await deleteJobToken(lazySsm, withToken(), out);
    await expect(value(PARAMETER)).rejects.toThrow(expect.objectContaining({ name: 'ParameterNotFound' }));
    // Deleting again (after_script after a job that deleted it) says nothing.
    await deleteJobToken(lazySsm, withToken(), out);
    expect(out.lines).toEqual([
      `Job token for registry.gitlab.example.com passed to the build by reference (SecureString ${PARAMETER}, deleted when the build ends)`,
      `Deleted the job token's SecureString ${PARAMETER}`,
    ]);
    expect(out.lines.join('\n')).not.toContain(TOKEN);
  });

  it('replaces a value already under its name, so that a retried PutParameter whose answer was lost still succeeds', async () => {
    await ssm.send(new PutParameterCommand({ Name: PARAMETER, Value: 'someone:else', Type: 'SecureString' }));
    await putJobToken(lazySsm, withToken(), memoryOutput());
    expect(await value(PARAMETER)).toBe(`gitlab-ci-token:${TOKEN}`);
    await deleteJobToken(lazySsm, withToken(), memoryOutput());
  });

  it('names the permission, the stack parameter and the alternative when the CI role may not write, never the token', async () => {
    await stack.control.inject({ kind: 'denied', operation: 'PutParameter', count: 1 });
    const e = await putJobToken(lazySsm, withToken(), memoryOutput()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AwsStepError);
    expect((e as Error).message.split('\n')).toEqual([
      `Passing the job token to the build for registry.gitlab.example.com (SecureString ${PARAMETER}) failed: AccessDeniedException: User is not authorized to perform: PutParameter on resource: ${PARAMETER}`,
      "registry.gitlab.example.com is this GitLab's registry, so the build logs in with the job token, which needs ssm:PutParameter and " +
        'ssm:DeleteParameter for the CI role on parameter/codebuild-image/job-tokens/* (infra/cloudformation.yml grants them with JobTokens=true: ' +
        "read the trust note in docs/registries.md first). Or give registry_credentials for registry.gitlab.example.com: a deploy token in Secrets Manager " +
        'or Parameter Store, listed in SecretArns or ParameterArns.',
    ]);
    expect((e as Error).message).not.toContain(TOKEN);
    await expect(value(PARAMETER)).rejects.toThrow(expect.objectContaining({ name: 'ParameterNotFound' }));
  });

  it('blames no permission for a failure that is not one', async () => {
    await stack.control.inject({ kind: 'status', status: 500, operation: 'PutParameter', count: 1 });
    const e = await putJobToken(lazySsm, withToken(), memoryOutput()).catch((x: unknown) => x);
    expect((e as Error).message.split('\n')).toEqual([expect.stringMatching(/failed: InternalFailure/)]);
  });

  it('does nothing without a job-token login, and makes no SSM client', async () => {
    const out = memoryOutput();
    await stack.control.resetCalls();
    let made = 0;
    const counted = async () => {
      made += 1;
      return ssm;
    };
    await putJobToken(counted, withToken([]), out);
    await deleteJobToken(counted, withToken([]), out);
    expect(out.lines).toEqual([]);
    expect(await stack.control.calls()).toEqual({});
    expect(made).toBe(0);
    await deleteJobToken(counted, withToken(), out);
    expect(made).toBe(1);
  });

  it('warns, naming the parameter and the permission, when it cannot be deleted', async () => {
    const out = memoryOutput();
    await putJobToken(lazySsm, withToken(), out);
    await stack.control.inject({ kind: 'status', status: 500, operation: 'DeleteParameter', count: 1 });
    await deleteJobToken(lazySsm, withToken(), out);
    expect(out.lines.at(-1)).toBe(
      `WARNING: Could not delete the SecureString ${PARAMETER} that holds this job's token (InternalFailure): the token stops working when the job ends, ` +
        'but delete the parameter, and let the CI role ssm:DeleteParameter on it.',
    );
    await deleteJobToken(lazySsm, withToken(), out);
  });
});

describe("the job's sign-in to the image's registry", () => {
  const image = () => ({ registry: registry.host, path: 'group/app', name: `${registry.host}/group/app` });
  const clients = { ecr: async (region: string) => new ECRClient({ region, credentials: STATIC_CREDENTIALS }), ssm: async () => ssm, secrets: async () => secrets };
  /** What the registry says to a read of a tag that does not exist: undefined once signed in. */
  const probe = (s: Settings) => registryClient(s, clients).find('group/app', 'none');

  it("signs in to a token service as GitLab's registry asks (Bearer), reading the credentials once for pull and push", async () => {
    const gitlab = await tokenServiceRegistry({ username: USER.username, password: USER.password });
    try {
      await stack.control.resetCalls();
      const s = { ...withToken([{ registry: gitlab.host, type: 'SECRETS_MANAGER', reference: 'ci/registry' }]), image: { registry: gitlab.host, path: 'group/app', name: `${gitlab.host}/group/app` } };
      const client = registryClient(s, clients);
      await expect(client.find('group/app', 'none')).resolves.toBeUndefined();
      await client.putManifest('group/app', 'latest', 'application/vnd.oci.image.index.v1+json', Buffer.from('{}'));
      expect(gitlab.scopes).toEqual(['repository:group/app:pull', 'repository:group/app:push,pull']);
      expect((await stack.control.calls()).GetSecretValue).toBe(1);
    } finally {
      await gitlab.close();
    }
  });

  it('neither reads nor sends credentials for a token service that is not HTTPS', async () => {
    const requested: string[] = [];
    let read = 0;
    const fetchStub: typeof fetch = async (url) => {
      requested.push(String(url));
      return new Response(null, { status: 401, headers: { 'www-authenticate': 'Bearer realm="http://gitlab.example.com/jwt/auth",service="container_registry"' } });
    };
    const client = new RegistryClient('registry.example.com', { fetch: fetchStub, credentials: async () => (read++, { username: 'gitlab-ci-token', password: TOKEN }) });
    await expect(client.find('group/app', 'none')).rejects.toThrow('its token service http://gitlab.example.com is not HTTPS; no credentials were sent');
    expect(requested).toEqual(['https://registry.example.com/v2/group/app/manifests/none']);
    expect(read).toBe(0);
  });

  it.each([
    ['the job token', { ...jobTokenLogin, registry: '' }],
    ['a Secrets Manager secret', { registry: '', type: 'SECRETS_MANAGER', reference: 'ci/registry' }],
    ['a parameter holding username:password', { registry: '', type: 'PARAMETER_STORE', reference: '/ci/registry' }],
  ] as [string, RegistryLogin][])('signs in with %s', async (_name, login) => {
    await expect(probe({ ...withToken([{ ...login, registry: registry.host }]), image: image() })).resolves.toBeUndefined();
  });

  it('is anonymous without a login for the registry, which then refuses', async () => {
    await expect(probe({ ...withToken([]), image: image() })).rejects.toThrow(/401/);
  });

  it('names the permission when the credentials cannot be read, and never the reference', async () => {
    const e = await probe({ ...withToken([{ registry: registry.host, type: 'SECRETS_MANAGER', reference: 'ci/missing' }]), image: image() }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AwsStepError);
    expect((e as Error).message).toContain(`Reading the credentials registry_credentials names for ${registry.host} failed: ResourceNotFoundException`);
    expect((e as Error).message).toContain('The CI role needs secretsmanager:GetSecretValue on it');
    expect((e as Error).message).not.toContain('ci/missing');
  });

  it("keeps AWS's message, which names the reference, out of a refusal", async () => {
    await stack.control.inject({ kind: 'denied', operation: 'GetSecretValue', count: 1 });
    const e = await probe({ ...withToken([{ registry: registry.host, type: 'SECRETS_MANAGER', reference: 'ci/registry' }]), image: image() }).catch((x: unknown) => x);
    expect((e as Error).message).toContain(`Reading the credentials registry_credentials names for ${registry.host} failed: AccessDeniedException`);
    expect((e as Error).message).not.toContain('ci/registry');
  });

  it('says what to store when the credentials read have no password, and sends none', async () => {
    await ssm.send(new PutParameterCommand({ Name: '/ci/user-only', Value: USER.username, Type: 'SecureString' }));
    const e = await probe({ ...withToken([{ registry: registry.host, type: 'PARAMETER_STORE', reference: '/ci/user-only' }]), image: image() }).catch((x: unknown) => x);
    expect((e as Error).message).toContain('no username or no password\nStore {"username","password"} in the secret, or username:password in the parameter.');
  });

  it.each([
    ['{"username":"u","password":"p:w"}', 'SECRETS_MANAGER', { username: 'u', password: 'p:w' }],
    ['{"username":"u","password":123456}', 'PARAMETER_STORE', { username: 'u', password: '123456' }],
    ['u:p:w', 'PARAMETER_STORE', { username: 'u', password: 'p:w' }],
    // CodeBuild reads a secret's username and password json keys: a secret u:p fails there, so here too.
    ['u:p:w', 'SECRETS_MANAGER', undefined],
    ['{"username":"u"}', 'PARAMETER_STORE', undefined],
    ['{not json', 'PARAMETER_STORE', undefined],
    [':p', 'PARAMETER_STORE', undefined],
    ['u:', 'PARAMETER_STORE', undefined],
  ] as const)('reads %s from %s as the build does', (text, type, expected) => {
    expect(parseCredentials(text, type)).toEqual(expected);
  });
});
