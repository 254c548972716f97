/**
 * BuildKit on the local stack, through the component: a warm rebuild replays the expensive step from the layer
 * cache in the registry after the engine was wiped (CodeBuild hosts start empty), and a secret mount leaves no
 * trace in the image.
 */
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { docker, emptyEngine } from '../../stack/docker';
import { fakeControl } from '../../stack/fake-aws/control';
import { getBlob, getManifest, platformManifests } from '../../stack/registry';
import type { Stack } from '../../stack/stack';
import { runOnStack, SELF_COMPONENT, stackInputs } from '../helpers/gitlab-ci-local';
import { makeJob, readDotenv, registryDigest, runAction, visible } from './helpers';
import { NPM_TOKEN } from './lanes';
import { sharedStack } from './stack-for-file';

const SECRET = NPM_TOKEN.value;
let stack: Stack;
sharedStack((s) => (stack = s));

/** The stack's registry outlives a run: a repository of this run's own starts without a cache. */
const fresh = (name: string) => `${name}-${Date.now().toString(36)}`;

/** Empties the engine as a fresh CodeBuild host is: no image, no build cache. */
async function wipeEngine(): Promise<void> {
  await emptyEngine(stack.dockerHost ?? '', stack.dockerConfig);
  expect((await docker(stack.dockerHost ?? '', ['image', 'ls', '--all', '--quiet'], stack.dockerConfig)).trim()).toBe('');
}

/**
 * The BuildKit step whose line contains `command` (BuildKit shows ARGs expanded): whether its command ran (its own output line appears, as `#N 0.123 <line>`)
 * and how long it took. A step replayed from the engine's own cache prints `#N CACHED`; one replayed from the
 * registry cache fetches its layers instead (BuildKit's event for it says `cached: true`), and its command never runs.
 */
function step(log: string, command: string, prints: string): { ran: boolean; seconds: number } {
  const escaped = command.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const started = new RegExp(`#(\\d+) \\[[^\\]]+\\] [^\\n]*${escaped}`).exec(log);
  if (!started) throw new Error(`no BuildKit step runs "${command}" in the log:\n${log}`);
  const n = started[1];
  const done = [...log.matchAll(new RegExp(`#${n} (?:DONE (\\d+\\.\\d+)s|CACHED)`, 'g'))].map((m) => Number(m[1] ?? 0));
  return { ran: new RegExp(`#${n} \\d+\\.\\d+ ${prints}`).test(log), seconds: done.reduce((a, b) => a + b, 0) };
}

describe('BuildKit through the component on the local stack', () => {
  const context = 'test/fixtures/warm-cache';
  const expensive = 'RUN echo "expensive step running" && sleep';
  const repository = fresh('group/cached');
  const pipeline = () => ({
    include: [{ component: SELF_COMPONENT, inputs: stackInputs(stack, 'build-image', repository, { context }) }],
  });

  it('rebuilds on a wiped engine with the expensive step replayed from the registry cache', async () => {
    await wipeEngine();
    const first = await runOnStack(stack, pipeline(), { copy: [context] });
    let firstDigest: string;
    try {
      expect(first.code, first.output).toBe(0);
      expect(step(first.output, expensive, 'expensive step running')).toMatchObject({ ran: true });
      expect(step(first.output, expensive, 'expensive step running').seconds).toBeGreaterThanOrEqual(4);
      expect(first.output).toContain('Warning: no layer cache at');
      firstDigest = readDotenv(join(first.dir, '.codebuild-image/build-image/build.env')).IMAGE_DIGEST ?? '';
      expect(await registryDigest(stack.registry, repository, 'latest')).toBe(firstDigest);
      expect((await getManifest(stack.registry, repository, 'buildcache')).layers?.length).toBeGreaterThan(0);
    } finally {
      first.remove();
    }

    await wipeEngine();
    const second = await runOnStack(stack, pipeline(), {
      copy: [context],
      files: { [`${context}/message.txt`]: 'second build\n' },
    });
    try {
      expect(second.code, second.output).toBe(0);
      const replayed = step(second.output, expensive, 'expensive step running');
      expect(replayed.ran).toBe(false);
      expect(replayed.seconds).toBeLessThan(4);
      expect(step(second.output, 'RUN cat /message.txt', 'second build').ran).toBe(true);
      expect(second.output).not.toContain('Warning: no layer cache');
      const digest = readDotenv(join(second.dir, '.codebuild-image/build-image/build.env')).IMAGE_DIGEST;
      expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(digest).not.toBe(firstDigest);
      expect(await registryDigest(stack.registry, repository, 'latest')).toBe(digest);
    } finally {
      second.remove();
    }
  });

  it('attaches provenance: the digest names an image index, and the JSON record says so', async () => {
    const job = await makeJob(stack, 'examples/hello', { CODEBUILD_IMAGE_IMAGE: `${stack.registry}/group/attested` });
    const result = await runAction(job);
    expect(result.code, visible(result.output)).toBe(0);
    const digest = readDotenv(join(job.reportDir, 'build.env')).IMAGE_DIGEST ?? '';
    const index = await getManifest(stack.registry, 'group/attested', digest);
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    const kinds = index.manifests?.map((m) => m.annotations?.['vnd.docker.reference.type'] ?? m.platform?.architecture);
    expect(kinds).toEqual(['amd64', 'attestation-manifest']);
    const record = JSON.parse(readFileSync(join(job.reportDir, 'build.json'), 'utf8'));
    expect(record).toMatchObject({ digest, imageIndex: true, mediaType: 'application/vnd.oci.image.index.v1+json' });
  });

  it('with attestations off, pushes a single manifest and records imageIndex false', async () => {
    const job = await makeJob(stack, 'examples/hello', { CODEBUILD_IMAGE_IMAGE: `${stack.registry}/group/plain`, CODEBUILD_IMAGE_ATTESTATIONS: 'false' });
    const result = await runAction(job);
    expect(result.code, visible(result.output)).toBe(0);
    const digest = readDotenv(join(job.reportDir, 'build.env')).IMAGE_DIGEST ?? '';
    const manifest = await getManifest(stack.registry, 'group/plain', digest);
    expect(manifest.manifests).toBeUndefined();
    expect(manifest.layers?.length).toBeGreaterThan(0);
    const record = JSON.parse(readFileSync(join(job.reportDir, 'build.json'), 'utf8'));
    expect(record.imageIndex).toBe(false);
  });

  it('mounts a secret build arg for one RUN step; it reaches neither the history nor any layer', async () => {
    await wipeEngine();
    const repository = fresh('group/secret');
    const job = await makeJob(stack, 'test/fixtures/secret-mount', {
      CODEBUILD_IMAGE_IMAGE: `${stack.registry}/${repository}`,
      CODEBUILD_IMAGE_SECRET_BUILD_ARGS: JSON.stringify([`NPM_TOKEN=secretsmanager:${NPM_TOKEN.name}`]),
    });
    const result = await runAction(job);
    const log = visible(result.output);
    expect(result.code, log).toBe(0);
    expect(log).toContain(`secret mounted: ${SECRET.length} bytes`);
    expect(log).not.toContain(SECRET);

    const digest = readDotenv(join(job.reportDir, 'build.env')).IMAGE_DIGEST ?? '';
    const history = await docker(stack.dockerHost ?? '', ['history', '--no-trunc', `${stack.registry}/${repository}@${digest}`], stack.dockerConfig);
    expect(history).toContain('secret mounted');
    expect(history).not.toContain(SECRET);

    const [image] = await platformManifests(stack.registry, repository, digest);
    const blobs = [image?.manifest.config, ...(image?.manifest.layers ?? [])];
    expect(blobs.length).toBeGreaterThan(2);
    for (const blob of blobs) {
      const bytes = await getBlob(stack.registry, repository, blob?.digest ?? '');
      const text = (blob?.mediaType.endsWith('gzip') ? gunzipSync(bytes) : bytes).toString('latin1');
      expect(text, blob?.digest).not.toContain(SECRET);
    }
  });
});

describe('a cache the build can neither read nor write', () => {
  it('never fails the build: one warning line says each, and the image is pushed', async () => {
    const job = await makeJob(stack, 'examples/hello', {
      CODEBUILD_IMAGE_IMAGE: `${stack.registry}/${fresh('group/nocache')}`,
      CODEBUILD_IMAGE_CACHE_REF: '127.0.0.1:9/nowhere/app:buildcache',
    });
    const result = await runAction(job);
    const log = visible(result.output);
    expect(result.code, log).toBe(0);
    expect(log.split('\n').filter((l) => l.startsWith('Warning: the layer cache'))).toEqual([
      expect.stringMatching(/^Warning: the layer cache at 127\.0\.0\.1:9\/nowhere\/app:buildcache could not be read /),
      expect.stringMatching(/^Warning: the layer cache could not be written to 127\.0\.0\.1:9\/nowhere\/app:buildcache /),
    ]);
    const digest = readDotenv(join(job.reportDir, 'build.env')).IMAGE_DIGEST;
    expect(digest).toMatch(/^sha256:/);
  });
});

describe('skip_unchanged', () => {
  it('builds once; a job with the same inputs starts no build and puts the same image under its tags', async () => {
    const repository = fresh('group/skip');
    const builds = async () => (await fakeControl(stack.fakeUrl).builds()).length;
    const run = async (tags: string[], buildArgs: string[] = []) => {
      const job = await makeJob(stack, 'examples/hello', {
        CODEBUILD_IMAGE_IMAGE: `${stack.registry}/${repository}`,
        CODEBUILD_IMAGE_SKIP_UNCHANGED: 'true',
        CODEBUILD_IMAGE_TAGS: JSON.stringify(tags),
        CODEBUILD_IMAGE_BUILD_ARGS: JSON.stringify([`BASE_IMAGE=${stack.baseImage ?? ''}`, ...buildArgs]),
      });
      const before = await builds();
      const result = await runAction(job);
      const log = visible(result.output);
      expect(result.code, log).toBe(0);
      const record = JSON.parse(readFileSync(join(job.reportDir, 'build.json'), 'utf8')) as { digest: string; reused?: boolean };
      return { log, record, started: (await builds()) - before, dotenv: readDotenv(join(job.reportDir, 'build.env')) };
    };

    const first = await run(['v1']);
    expect(first.log).toContain('No image was built from these inputs yet');
    expect(first.started).toBe(1);

    const again = await run(['v2']);
    expect(again.started).toBe(0);
    expect(again.log).toContain('Unchanged build inputs');
    expect(again.record).toMatchObject({ reused: true, digest: first.record.digest });
    expect(again.dotenv.IMAGE_DIGEST).toBe(first.record.digest);
    expect(again.dotenv.CODEBUILD_BUILD_ID).toBeUndefined();
    expect(await registryDigest(stack.registry, repository, 'v2')).toBe(first.record.digest);

    const changed = await run(['v3'], ['GREETING=changed']);
    expect(changed.started).toBe(1);
    expect(changed.record.digest).not.toBe(first.record.digest);
    expect(await registryDigest(stack.registry, repository, 'v3')).toBe(changed.record.digest);
  });
});
