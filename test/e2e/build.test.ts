import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { fakeControl } from '../../stack/fake-aws/control';
import { getBlob, platformManifests } from '../../stack/registry';
import type { Stack } from '../../stack/stack';
import { contextObject, type Job, makeJob, nodes, readDotenv, registryDigest, runAction, visible } from './helpers';
import { sharedStack } from './stack-for-file';

let stack: Stack;
sharedStack((s) => (stack = s));

/** The GitLab sections of a raw job log: id, marker times (Unix seconds) and the visible lines inside. */
function sectionsOf(output: string): { id: string; start: number; end: number; lines: string[] }[] {
  const found: { id: string; start: number; end: number; lines: string[] }[] = [];
  const re = /section_start:(\d+):([\w.-]+)[^\r]*\r([\s\S]*?)section_end:(\d+):\2\r/g;
  for (const m of output.matchAll(re)) {
    found.push({ id: m[2] as string, start: Number(m[1]), end: Number(m[4]), lines: visible(m[3] as string).split('\n') });
  }
  return found;
}

/** The text of the file `name` at the image's root, read from its layers in the registry. */
async function fileInLayers(repository: string, layers: { digest: string }[], name: string): Promise<string | undefined> {
  for (const layer of layers) {
    const tar = gunzipSync(await getBlob(stack.registry, repository, layer.digest));
    const at = tar.indexOf(`${name}\0`);
    if (at < 0) continue;
    // A ustar header: the size in octal at offset 124, the content in the next 512-byte block.
    const size = parseInt(tar.subarray(at + 124, at + 136).toString('latin1'), 8);
    return tar.subarray(at + 512, at + 512 + size).toString('utf8');
  }
  return undefined;
}

const fakeBuilds = () => fakeControl(stack.fakeUrl).builds();
const fakeCalls = () => fakeControl(stack.fakeUrl).calls();

describe('dist/index.js against the local stack', () => {
  const job = () => makeJob(stack, 'examples/hello');
  let first: Job;

  it.each([
    ['Node 20', nodes.node20],
    ['Node 22', nodes.node22],
  ])('builds and pushes the image, and reports the digest the registry serves (%s)', async (_name, node) => {
    first = await job();
    const result = await runAction(first, { node });
    const log = visible(result.output);
    expect(result.code, log).toBe(0);

    const dotenv = readDotenv(join(first.reportDir, 'build.env'));
    const repository = 'group/hello';
    for (const tag of ['01234567', 'latest']) {
      expect(await registryDigest(stack.registry, repository, tag)).toBe(dotenv.IMAGE_DIGEST);
    }
    expect(dotenv.IMAGE_DIGEST).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(dotenv.IMAGE_REF).toBe(`${stack.registry}/${repository}@${dotenv.IMAGE_DIGEST}`);

    // The Dockerfile's RUN step output and every phase header reach the job log.
    expect(log).toContain('hello from the RUN step, greeting=');
    for (const phase of ['PROVISIONING', 'DOWNLOAD_SOURCE', 'INSTALL', 'PRE_BUILD', 'BUILD', 'POST_BUILD']) {
      expect(log).toMatch(new RegExp(`\\b${phase}\\b`));
    }
    expect(log.trimEnd().split('\n').at(-1)).toContain('SUCCEEDED');
    // The SDK's Node-version notice is off (Node 20 would get it); other warnings would still show.
    expect(result.output).not.toContain('NodeVersionSupportWarning');

    // Every agent marker sits in the section of its own phase, and sections carry CodeBuild's times.
    const sections = sectionsOf(result.output);
    expect(sections.map((x) => x.id).filter((id) => id.startsWith('codebuild_phase_'))).toHaveLength(10);
    for (const { id, lines } of sections) {
      for (const l of lines) {
        const phase = /(?:Entering phase|Phase is|Phase complete:) ([A-Z_]+)/.exec(l)?.[1];
        if (phase) expect(id, l).toMatch(new RegExp(`^codebuild_phase_\\d+_${phase.toLowerCase()}$`));
      }
    }
    const buildSection = sections.find((x) => x.id === 'codebuild_phase_6_build');
    const seconds = Number(/BUILD SUCCEEDED \((\d+)s\)/.exec(buildSection?.lines.join('\n') ?? '')?.[1]);
    expect(Math.abs((buildSection?.end ?? 0) - (buildSection?.start ?? 0) - seconds)).toBeLessThanOrEqual(1);
    // The whole build log is kept as build.log.
    const buildLog = readFileSync(join(first.reportDir, 'build.log'), 'utf8');
    expect(buildLog).toContain('hello from the RUN step, greeting=');
    expect(buildLog).toMatch(/^\[Container\] .* Phase complete: UPLOAD_ARTIFACTS State: SUCCEEDED$/m);

    const record = JSON.parse(readFileSync(join(first.reportDir, 'build.json'), 'utf8'));
    const builds = await fakeBuilds();
    const build = builds.find((b) => b.id === record.buildId);
    expect(build?.buildStatus).toBe('SUCCEEDED');
    expect(record).toMatchObject({ status: 'SUCCEEDED', digest: dotenv.IMAGE_DIGEST, tags: ['01234567', 'latest'] });
    expect(record.context.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(readFileSync(join(first.reportDir, 'build-id'), 'utf8').trim()).toBe(record.buildId);
  });

  it('uploads nothing when the context is unchanged', async () => {
    const again = await job();
    const before = await fakeCalls();
    const result = await runAction(again);
    expect(result.code, visible(result.output)).toBe(0);
    expect(visible(result.output)).toMatch(/upload skipped/i);
    const a = JSON.parse(readFileSync(join(first.reportDir, 'build.json'), 'utf8'));
    const b = JSON.parse(readFileSync(join(again.reportDir, 'build.json'), 'utf8'));
    expect(b.context.sha256).toBe(a.context.sha256);
    expect(b.context.uploaded).toBe(false);
    // A new job is a new build: the idempotency token is per job.
    expect(b.buildId).not.toBe(a.buildId);
    expect((await fakeCalls()).StartBuild).toBe((before.StartBuild ?? 0) + 1);
  });

  it('uploads nothing on a re-run in the same checkout: reports, also of other jobs, are never part of the context', async () => {
    // The first run left its reports in .codebuild-image/; an artifact of another job lands there too.
    mkdirSync(join(first.dir, '.codebuild-image', 'other-job'), { recursive: true });
    writeFileSync(join(first.dir, '.codebuild-image', 'other-job', 'build.json'), '{"from":"an earlier job"}');
    const before = JSON.parse(readFileSync(join(first.reportDir, 'build.json'), 'utf8'));
    const result = await runAction(first);
    const log = visible(result.output);
    expect(result.code, log).toBe(0);
    expect(log).toMatch(/upload skipped/i);
    expect(log).toContain("Not sending .codebuild-image: it holds this program's reports");
    const after = JSON.parse(readFileSync(join(first.reportDir, 'build.json'), 'utf8'));
    expect(after.context.sha256).toBe(before.context.sha256);
    expect(after.context.uploaded).toBe(false);
  });

  it('fails with the failing phase and the build’s own error line when the Dockerfile fails', async () => {
    const failing = await job();
    writeFileSync(
      join(failing.dir, 'Dockerfile'),
      'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo "about to fail" && exit 7\n',
    );
    const result = await runAction(failing);
    const log = visible(result.output);
    expect(result.code).toBe(1);
    expect(log).toContain('about to fail');
    expect(log).toMatch(/did not complete successfully: exit code: 7/);
    expect(log).toMatch(/Phase BUILD FAILED/);
    expect(log.trimEnd().split('\n').at(-1)).toBe('Build status: FAILED');
    expect(existsSync(join(failing.reportDir, 'build.env'))).toBe(false);
    const record = JSON.parse(readFileSync(join(failing.reportDir, 'build.json'), 'utf8'));
    expect(record.status).toBe('FAILED');
  });

  it('stops the build when the job gets SIGTERM during BUILD', async () => {
    const slow = await job();
    writeFileSync(
      join(slow.dir, 'Dockerfile'),
      'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nRUN echo "long step started" && sleep 120\n',
    );
    let sent = false;
    const result = await runAction(slow, {
      onOutput: (all, child) => {
        if (!sent && all.includes('long step started')) {
          sent = true;
          child.kill('SIGTERM');
        }
      },
    });
    expect(sent).toBe(true);
    expect(result.code).not.toBe(0);
    const buildId = readFileSync(join(slow.reportDir, 'build-id'), 'utf8').trim();
    const build = (await fakeBuilds()).find((b) => b.id === buildId);
    expect(build?.buildStatus).toBe('STOPPED');
  });

  it('refuses a token for another audience than oidc_audience before calling STS', async () => {
    const denied = await job();
    denied.env.GITLAB_OIDC_TOKEN = await stack.signToken({ aud: 'https://wrong.example.com' });
    const before = await fakeCalls();
    const result = await runAction(denied);
    const log = visible(result.output);
    expect(result.code, log).toBe(2);
    expect(log).toContain('input id_token_variable: $GITLAB_OIDC_TOKEN holds a JWT for audience "https://wrong.example.com"');
    expect(log).not.toContain(denied.env.GITLAB_OIDC_TOKEN);
    expect(await fakeCalls()).toEqual(before);
  });

  it.each([
    // A sub outside the trust policy passes the local checks and gets AccessDenied from AWS.
    ['sub', { sub: 'project_path:evil/app:ref_type:branch:ref:main' }, /AccessDenied/, /\bsub\b/],
  ])('explains an AssumeRoleWithWebIdentity refusal for a wrong %s', async (_what, claims, code, hint) => {
    const denied = await job();
    denied.env.GITLAB_OIDC_TOKEN = await stack.signToken(claims);
    const before = await fakeCalls();
    const result = await runAction(denied);
    const log = visible(result.output);
    expect(result.code).toBe(3);
    expect(log).toMatch(code);
    expect(log).toMatch(hint);
    expect(log).not.toContain(denied.env.GITLAB_OIDC_TOKEN);
    expect((await fakeCalls()).StartBuild ?? 0).toBe(before.StartBuild ?? 0);
  });

  it('rejects bad input with exit 2 and no AWS call', async () => {
    const bad = await job();
    bad.env.CODEBUILD_IMAGE_TAGS = JSON.stringify(['ok', 'bad tag!']);
    bad.env.CODEBUILD_IMAGE_BUILD_TIMEOUT = '4';
    const before = await fakeCalls();
    const result = await runAction(bad);
    const log = visible(result.output);
    expect(result.code).toBe(2);
    expect(log).toContain('tags');
    expect(log).toContain('build_timeout');
    expect(await fakeCalls()).toEqual(before);
  });

  it('passes build args named PATH, HOME and DOCKER_CONFIG to the image; the build script and docker keep their own', async () => {
    const repository = 'group/build-args';
    const named = await job();
    named.env.CODEBUILD_IMAGE_IMAGE = `${stack.registry}/${repository}`;
    named.env.CODEBUILD_IMAGE_BUILD_ARGS = JSON.stringify([
      `BASE_IMAGE=${stack.registry}/busybox:stable`, 'PATH=/opt/custom/bin', 'HOME=/custom/home', 'DOCKER_CONFIG=/custom/config',
    ]);
    // ARG PATH is the RUN step's PATH too: the step uses the shell's builtins only.
    writeFileSync(
      join(named.dir, 'Dockerfile'),
      'ARG BASE_IMAGE\nFROM ${BASE_IMAGE}\nARG PATH\nARG HOME\nARG DOCKER_CONFIG\nRUN echo "$PATH $HOME $DOCKER_CONFIG" > /build-args.txt\n',
    );
    const result = await runAction(named);
    const log = visible(result.output);
    // The stack's docker finds buildx in its own DOCKER_CONFIG (cli-plugins): a build arg there would lose it.
    expect(result.code, log).toBe(0);
    const [image] = await platformManifests(stack.registry, repository, 'latest');
    expect(await fileInLayers(repository, image?.manifest.layers ?? [], 'build-args.txt')).toBe('/opt/custom/bin /custom/home /custom/config\n');
  });

  it('sends a symlink that leaves the context as a link, as docker build does, never its target', async () => {
    const linked = await job();
    symlinkSync('/etc/hostname', join(linked.dir, 'host-file'));
    const result = await runAction(linked);
    const log = visible(result.output);
    expect(result.code, log).toBe(0);
    const record = JSON.parse(readFileSync(join(linked.reportDir, 'build.json'), 'utf8'));
    const zip = join(linked.dir, 'uploaded.zip');
    writeFileSync(zip, await contextObject(stack, record.context.key));
    // zipinfo's long listing: the mode string starts with l for a link; the entry's data is the link text.
    const listing = execFileSync('zipinfo', [zip]).toString();
    expect(listing).toMatch(/^l\S+ .* host-file$/m);
    expect(execFileSync('unzip', ['-p', zip, 'host-file']).toString()).toBe('/etc/hostname');
  });
});
