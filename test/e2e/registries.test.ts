/**
 * A registry that requires a user, on the local stack, through the component: the base image is pulled from it and
 * the image pushed to it with credentials CodeBuild resolves from Secrets Manager by reference; without them the
 * build fails with one line naming the registry and the input to set; the password appears in no output. As GitLab's
 * registry, it takes the job's CI_JOB_TOKEN, which reaches the builds only through a short-lived SecureString.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { basicCredentials, manifestDigest, platformManifests } from '../../stack/registry';
import { AUTH_REGISTRY_SECRET, type Stack } from '../../stack/stack';
import { runOnStack, SELF_COMPONENT, type StackRun, stackInputs } from '../helpers/gitlab-ci-local';
import { contextObject, readDotenv, stackParameter, visible } from './helpers';
import { AUTH_REGISTRY_JOB_TOKEN, AUTH_REGISTRY_USER } from './lanes';
import { sharedStack } from './stack-for-file';

const USER = AUTH_REGISTRY_USER;
const JOB_TOKEN = AUTH_REGISTRY_JOB_TOKEN;
let stack: Stack;
let registry: string;

const control = sharedStack((s) => {
  stack = s;
  registry = s.authRegistry ?? '';
});

/** The platforms of the image index under `repository:tag` on the authenticated registry. */
async function indexPlatforms(repository: string, tag: string): Promise<string[]> {
  return (await platformManifests(registry, repository, tag, USER)).map((m) => m.platform);
}

/** None of `secrets` in any output: the job log, StartBuild as the fake recorded it, the uploaded zip, the reports. */
async function expectInNoOutput(secrets: string[], run: StackRun, builds: { source: { location?: string } }[]): Promise<void> {
  const location = builds.at(-1)?.source.location ?? '';
  const zip = await contextObject(stack, location.slice(location.indexOf('/') + 1));
  expect(zip.length).toBeGreaterThan(0);
  const outputs = [
    { path: 'job log', text: run.output },
    { path: 'StartBuild as the fake recorded it', text: JSON.stringify(builds) },
    { path: 'uploaded zip', text: zip.toString('latin1') },
    ...filesUnder(join(run.dir, '.codebuild-image')),
  ];
  expect(outputs.length).toBeGreaterThan(4);
  for (const o of outputs) for (const secret of secrets) expect(o.text.includes(secret), `a secret in ${o.path}`).toBe(false);
}

/** Runs a two-platform build of test/fixtures/arch to `repository` on the authenticated registry. */
function runMultiPlatform(repository: string, extra: Record<string, unknown>, opts: { jobToken?: string } = {}): Promise<StackRun> {
  const inputs = stackInputs(stack, 'build-image', '', {
    context: 'test/fixtures/arch',
    image: `${registry}/${repository}`,
    platforms: ['linux/amd64', 'linux/arm64'],
    build_args: [`BASE_IMAGE=${stack.authBaseImage}`, `NONCE=${repository}`],
    ...extra,
  });
  return runOnStack(stack, { include: [{ component: SELF_COMPONENT, inputs }] }, { copy: ['test/fixtures/arch'], ...opts });
}

const BASIC = basicCredentials(USER);

/** Every file under `dir`, read. */
function filesUnder(dir: string): { path: string; text: string }[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => statSync(f).isFile())
    .map((f) => ({ path: f, text: readFileSync(f, 'latin1') }));
}

describe('a registry that requires a user, through the component on the local stack', () => {
  const repository = `group/private-${Date.now().toString(36)}`;
  const pipeline = (extra: Record<string, unknown>) => ({
    include: [
      {
        component: SELF_COMPONENT,
        inputs: stackInputs(stack, 'build-image', '', { image: `${registry}/${repository}`, build_args: [`BASE_IMAGE=${stack.authBaseImage}`], ...extra }),
      },
    ],
  });

  // First: the stack's builds share one docker client config (a CodeBuild host starts with its own), so a
  // build that logged in would leave this one logged in too.
  it('without credentials fails with one line naming the registry and the input to set', async () => {
    const run = await runOnStack(stack, pipeline({}));
    try {
      expect(run.code, run.output).not.toBe(0);
      const lines = visible(run.output).split('\n').filter((l) => l.includes('registry_credentials'));
      expect(lines, run.output).toEqual([
        expect.stringContaining(`Error: ${registry} asked for credentials: set registry_credentials: ["${registry}=secretsmanager:<secret-id>"]`),
      ]);
      expect(await manifestDigest(registry, repository, 'latest', USER)).toBeUndefined();
    } finally {
      run.remove();
    }
  });

  it('with credentials by reference pulls the base image from it and pushes there, the password in no output', async () => {
    const run = await runOnStack(stack, pipeline({ registry_credentials: [`${registry}=secretsmanager:${AUTH_REGISTRY_SECRET}`] }));
    try {
      expect(run.code, run.output).toBe(0);
      const log = visible(run.output);
      expect(log).toContain(`Logging in to ${registry}`);
      expect(log).toMatch(new RegExp(`FROM ${stack.authBaseImage?.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}|load metadata for ${registry}/busybox:stable`));
      const dotenv = readDotenv(join(run.dir, '.codebuild-image/build-image/build.env'));
      expect(dotenv.IMAGE_DIGEST).toMatch(/^sha256:/);
      expect(await manifestDigest(registry, repository, 'latest', USER)).toBe(dotenv.IMAGE_DIGEST);

      const builds = await control().builds();
      const build = builds.at(-1);
      // StartBuild carried references only; CodeBuild (the fake) resolved them.
      expect(build?.environment.environmentVariables.filter((v) => v.name.startsWith('CBI_LOGIN_'))).toEqual([
        { name: 'CBI_LOGIN_REGISTRIES', value: registry, type: 'PLAINTEXT' },
        { name: 'CBI_LOGIN_USER_0', value: `${AUTH_REGISTRY_SECRET}:username`, type: 'SECRETS_MANAGER' },
        { name: 'CBI_LOGIN_PASSWORD_0', value: `${AUTH_REGISTRY_SECRET}:password`, type: 'SECRETS_MANAGER' },
      ]);
      await expectInNoOutput([USER.password, BASIC], run, builds);
    } finally {
      run.remove();
    }
  });
});

describe('a multi-platform image there, with credentials by reference', () => {
  it('puts the index with the credentials the job reads from the same reference', async () => {
    const repository = `group/multi-${Date.now().toString(36)}`;
    const run = await runMultiPlatform(repository, { registry_credentials: [`${registry}=secretsmanager:${AUTH_REGISTRY_SECRET}`] });
    try {
      expect(run.code, run.output).toBe(0);
      const dotenv = readDotenv(join(run.dir, '.codebuild-image/build-image/build.env'));
      expect(await manifestDigest(registry, repository, 'latest', USER)).toBe(dotenv.IMAGE_DIGEST);
      expect(await indexPlatforms(repository, 'latest')).toEqual(['linux/amd64', 'linux/arm64']);
      await expectInNoOutput([USER.password, BASIC], run, (await control().builds()).slice(-2));
    } finally {
      run.remove();
    }
  });
});

describe("as GitLab's registry, with the job's CI_JOB_TOKEN (CI_REGISTRY is the authenticated registry)", () => {
  it('builds two platforms pulling from it and pushing to it, the index put with the token; the SecureString is gone after, the token in no output', async () => {
    const repository = `group/gitlab-${Date.now().toString(36)}`;
    const run = await runMultiPlatform(repository, {}, { jobToken: JOB_TOKEN });
    try {
      const log = visible(run.output);
      expect(run.code, run.output).toBe(0);
      expect(log).toContain(`[linux/amd64] Logging in to ${registry} with the job token`);
      expect(log).toContain(`[linux/arm64] Logging in to ${registry} with the job token`);
      const dotenv = readDotenv(join(run.dir, '.codebuild-image/build-image/build.env'));
      expect(await manifestDigest(registry, repository, 'latest', USER)).toBe(dotenv.IMAGE_DIGEST);
      expect(await indexPlatforms(repository, 'latest')).toEqual(['linux/amd64', 'linux/arm64']);

      // Each build got the parameter's name, which the job wrote before StartBuild and deleted after.
      const builds = (await control().builds()).slice(-2);
      const credentials = builds.map((b) => b.environment.environmentVariables.find((v) => v.name === 'CBI_LOGIN_CREDENTIAL_0'));
      expect(credentials).toEqual([1, 2].map(() => ({ name: 'CBI_LOGIN_CREDENTIAL_0', value: expect.stringMatching(/^\/codebuild-image\/job-tokens\/\d+\/\d+$/), type: 'PARAMETER_STORE' })));
      const parameter = credentials[0]?.value ?? '';
      expect(log).toContain(`Job token for ${registry} passed to the build by reference (SecureString ${parameter}, deleted when the build ends)`);
      expect(log).toContain(`Deleted the job token's SecureString ${parameter}`);
      expect(await stackParameter(stack, parameter)).toBe('ParameterNotFound');
      await expectInNoOutput([JOB_TOKEN], run, builds);
    } finally {
      run.remove();
    }
  });
});
