/**
 * A registry that requires a user, on the local stack, through the component: the base image is pulled from it and
 * the image pushed to it with credentials CodeBuild resolves from Secrets Manager by reference; without them the
 * build fails with one line naming the registry and the input to set; the password appears in no output.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fakeControl } from '../../stack/fake-aws/control';
import { AUTH_REGISTRY_SECRET, startStack, type Stack } from '../../stack/stack';
import { repoRoot, runOnStack, SELF_COMPONENT, stackInputs } from '../helpers/gitlab-ci-local';
import { contextObject, readDotenv, visible } from './helpers';

const USER = { username: 'reg-user-7q', password: 'Pw-4uth-r3gistry-c81d' };
let stack: Stack;
let registry: string;

beforeAll(async () => {
  stack = await startStack({ dir: join(repoRoot, '.stack', 'registries'), phaseDelayMs: 50, authRegistry: USER });
  registry = stack.authRegistry ?? '';
});

afterAll(async () => {
  await stack?.stop();
});

/** The digest the authenticated registry serves for `repository:tag`. */
async function digestOf(repository: string, tag: string): Promise<string | null> {
  const res = await fetch(`http://${registry}/v2/${repository}/manifests/${tag}`, {
    method: 'HEAD',
    headers: {
      authorization: `Basic ${Buffer.from(`${USER.username}:${USER.password}`).toString('base64')}`,
      accept: 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json',
    },
  });
  return res.ok ? res.headers.get('docker-content-digest') : `HTTP ${res.status}`;
}

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
      expect(await digestOf(repository, 'latest')).toBe('HTTP 404');
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
      expect(await digestOf(repository, 'latest')).toBe(dotenv.IMAGE_DIGEST);

      const builds = await fakeControl(stack.fakeUrl).builds();
      const build = builds.at(-1);
      // StartBuild carried references only; CodeBuild (the fake) resolved them.
      expect(build?.environment.environmentVariables.filter((v) => v.name.startsWith('CBI_LOGIN_'))).toEqual([
        { name: 'CBI_LOGIN_REGISTRIES', value: registry, type: 'PLAINTEXT' },
        { name: 'CBI_LOGIN_USER_0', value: `${AUTH_REGISTRY_SECRET}:username`, type: 'SECRETS_MANAGER' },
        { name: 'CBI_LOGIN_PASSWORD_0', value: `${AUTH_REGISTRY_SECRET}:password`, type: 'SECRETS_MANAGER' },
      ]);
      const location = build?.source.location ?? '';
      const zip = await contextObject(stack, location.slice(location.indexOf('/') + 1));
      expect(zip.length).toBeGreaterThan(0);

      const basic = Buffer.from(`${USER.username}:${USER.password}`).toString('base64');
      const outputs = [
        { path: 'job log', text: run.output },
        { path: 'StartBuild as the fake recorded it', text: JSON.stringify(builds) },
        { path: 'uploaded zip', text: zip.toString('latin1') },
        ...filesUnder(join(run.dir, '.codebuild-image')),
      ];
      expect(outputs.length).toBeGreaterThan(4);
      for (const o of outputs) {
        expect(o.text.includes(USER.password) || o.text.includes(basic), `the password in ${o.path}`).toBe(false);
      }
    } finally {
      run.remove();
    }
  });
});
