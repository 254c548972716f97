// The job token's SecureString (src/job-token.ts) and the job's own registry sign-in (src/registry-signin.ts), with the
// real SDK against the fake's Parameter Store and Secrets Manager, and a real docker-registry that requires a user.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ECRClient } from '@aws-sdk/client-ecr';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopPid } from '../../stack/process';
import { type Registry, startRegistry } from '../../stack/registry';
import { AwsStepError } from '../../src/errors';
import { deleteJobToken, putJobToken } from '../../src/job-token';
import { parseCredentials, registryClient } from '../../src/registry-signin';
import type { RegistryLogin, Settings } from '../../src/settings';
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

const PARAMETER = '/codebuild-image/job-tokens/42/2002';
const jobTokenLogin: RegistryLogin = { registry: 'registry.gitlab.example.com', type: 'PARAMETER_STORE', reference: PARAMETER, jobToken: true };
const withToken = (logins: RegistryLogin[] = [jobTokenLogin]) => settingsFixture({ registryLogins: logins, gitlab: { ...settingsFixture().gitlab, jobToken: TOKEN } });
const value = async (name: string) => (await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }))).Parameter?.Value;

describe('the job token SecureString', () => {
  it('is written as gitlab-ci-token:<token> for the build to read, and deleted after', async () => {
    const out = memoryOutput();
    await putJobToken(ssm, withToken(), out);
    expect(await value(PARAMETER)).toBe(`gitlab-ci-token:${TOKEN}`);
    await deleteJobToken(ssm, withToken(), out);
    await expect(value(PARAMETER)).rejects.toThrow(expect.objectContaining({ name: 'ParameterNotFound' }));
    // Deleting again (after_script after a job that deleted it) says nothing.
    await deleteJobToken(ssm, withToken(), out);
    expect(out.lines).toEqual([
      `Job token for registry.gitlab.example.com passed to the build by reference (SecureString ${PARAMETER}, deleted when the build ends)`,
      `Deleted the job token's SecureString ${PARAMETER}`,
    ]);
    expect(out.lines.join('\n')).not.toContain(TOKEN);
  });

  it('never uses or replaces a parameter it did not write', async () => {
    await ssm.send(new PutParameterCommand({ Name: PARAMETER, Value: 'someone:else', Type: 'SecureString' }));
    const e = await putJobToken(ssm, withToken(), memoryOutput()).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AwsStepError);
    expect((e as Error).message).toContain(`The parameter ${PARAMETER} exists and is not this job's: delete it (aws ssm delete-parameter --name ${PARAMETER})`);
    expect((e as Error).message).not.toContain(TOKEN);
    expect(await value(PARAMETER)).toBe('someone:else');
    await deleteJobToken(ssm, withToken(), memoryOutput());
  });

  it('does nothing without a job-token login', async () => {
    const out = memoryOutput();
    await stack.control.resetCalls();
    await putJobToken(ssm, withToken([]), out);
    await deleteJobToken(ssm, withToken([]), out);
    expect(out.lines).toEqual([]);
    expect(await stack.control.calls()).toEqual({});
  });

  it('warns, naming the parameter and the permission, when it cannot be deleted', async () => {
    const out = memoryOutput();
    await putJobToken(ssm, withToken(), out);
    await stack.control.inject({ kind: 'status', status: 500, operation: 'DeleteParameter', count: 1 });
    await deleteJobToken(ssm, withToken(), out);
    expect(out.lines.at(-1)).toBe(
      `WARNING: Could not delete the SecureString ${PARAMETER} that holds this job's token (InternalFailure): the token stops working when the job ends, ` +
        'but delete the parameter, and let the CI role ssm:DeleteParameter on it.',
    );
    await deleteJobToken(ssm, withToken(), out);
  });
});

describe("the job's sign-in to the image's registry", () => {
  const image = () => ({ registry: registry.host, path: 'group/app', name: `${registry.host}/group/app` });
  const clients = { ecr: (region: string) => new ECRClient({ region, credentials: STATIC_CREDENTIALS }), get ssm() { return ssm; }, get secrets() { return secrets; } };
  /** What the registry says to a read of a tag that does not exist: undefined once signed in. */
  const probe = (s: Settings) => registryClient(s, clients).find('group/app', 'none');

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

  it('names the permission when the credentials cannot be read, and never a password', async () => {
    const e = await probe({ ...withToken([{ registry: registry.host, type: 'SECRETS_MANAGER', reference: 'ci/missing' }]), image: image() }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AwsStepError);
    expect((e as Error).message).toContain('The CI role needs secretsmanager:GetSecretValue on ci/missing');
  });

  it.each([
    ['{"username":"u","password":"p:w"}', { username: 'u', password: 'p:w' }],
    ['u:p:w', { username: 'u', password: 'p:w' }],
    ['{"username":"u"}', undefined],
    ['{not json', undefined],
    [':p', undefined],
    ['u:', undefined],
  ])('reads credentials %s as the build script does', (text, expected) => {
    expect(parseCredentials(text)).toEqual(expected);
  });
});
