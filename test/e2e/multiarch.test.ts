/**
 * Multi-architecture images on the local stack: one build per platform on the project that builds it (the fake
 * runs the arm64 project's builds as linux/arm64 through QEMU), one image index under every tag, and every build
 * stopped when the job is cancelled or one platform fails.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { fakeControl } from '../../stack/fake-aws/control';
import { getBlob, getManifest, platformManifests } from '../../stack/registry';
import type { Stack } from '../../stack/stack';
import { makeJob, readDotenv, registryDigest, runAction, visible } from './helpers';
import { sharedStack } from './stack-for-file';

let stack: Stack;
sharedStack((s) => (stack = s));

const PLATFORMS = JSON.stringify(['linux/amd64', 'linux/arm64']);
const fresh = (name: string) => `${name}-${Date.now().toString(36)}`;

function job(repository: string, args: string[] = [], inputs: Record<string, string> = {}) {
  return makeJob(stack, 'test/fixtures/arch', {
    CODEBUILD_IMAGE_IMAGE: `${stack.registry}/${repository}`,
    CODEBUILD_IMAGE_PLATFORMS: PLATFORMS,
    CODEBUILD_IMAGE_BUILD_ARGS: JSON.stringify([`BASE_IMAGE=${stack.baseImage ?? ''}`, `NONCE=${repository}`, ...args]),
    ...inputs,
  });
}

/** The text of /arch.txt in the image's layers, read from the registry. */
async function archOf(repository: string, manifest: { layers?: { digest: string }[] }): Promise<string> {
  for (const layer of manifest.layers ?? []) {
    const tar = gunzipSync(await getBlob(stack.registry, repository, layer.digest)).toString('latin1');
    const at = tar.indexOf('arch.txt\0');
    if (at >= 0) return tar.slice(at + 512, at + 512 + 16).split('\n')[0] ?? '';
  }
  return '';
}

describe('platforms: [linux/amd64, linux/arm64]', () => {
  it('builds each platform natively and serves one index under every tag', async () => {
    const repository = fresh('multi/app');
    const j = await job(repository);
    const result = await runAction(j);
    const log = visible(result.output);
    expect(result.code, log).toBe(0);

    const dotenv = readDotenv(join(j.reportDir, 'build.env'));
    for (const tag of ['01234567', 'latest']) expect(await registryDigest(stack.registry, repository, tag)).toBe(dotenv.IMAGE_DIGEST);
    const index = await getManifest(stack.registry, repository, 'latest');
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    const images = await platformManifests(stack.registry, repository, 'latest');
    expect(images.map((m) => m.platform)).toEqual(['linux/amd64', 'linux/arm64']);
    // The arm64 RUN step ran as aarch64, read back from its layer in the registry.
    expect(await archOf(repository, images[1]!.manifest)).toBe('aarch64');
    expect(await archOf(repository, images[0]!.manifest)).toBe('x86_64');

    expect(dotenv.IMAGE_DIGEST_LINUX_AMD64).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(dotenv.IMAGE_DIGEST_LINUX_ARM64).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(Object.keys(dotenv).length).toBeLessThanOrEqual(20);
    const record = JSON.parse(readFileSync(join(j.reportDir, 'build.json'), 'utf8'));
    expect(record).toMatchObject({ status: 'SUCCEEDED', digest: dotenv.IMAGE_DIGEST, imageIndex: true });
    expect(record.platforms.map((p: { platform: string; projectName: string }) => `${p.platform} ${p.projectName}`)).toEqual([
      `linux/amd64 ${stack.projectName}`,
      `linux/arm64 ${stack.projectName}-arm64`,
    ]);
    // One job log: each line marked with its platform.
    expect(log).toContain('[linux/arm64] #');
    expect(log).toMatch(/\[linux\/arm64\] .*RUN step on aarch64/);
    expect(log).toMatch(/\[linux\/amd64\] .*RUN step on x86_64/);
  });

  it('stops the other build and names the failing platform and phase when one fails', async () => {
    const j = await job(fresh('multi/fail'), ['FAIL_ON=aarch64', 'SLEEP=30']);
    const result = await runAction(j);
    const log = visible(result.output);
    expect(result.code, log).toBe(1);
    expect(log).toContain('The linux/arm64 build FAILED in BUILD');
    const { platforms } = JSON.parse(readFileSync(join(j.reportDir, 'build.json'), 'utf8')) as { platforms: { platform: string; status: string }[] };
    expect(platforms.map((p) => `${p.platform} ${p.status}`).sort()).toEqual(['linux/amd64 STOPPED', 'linux/arm64 FAILED'].sort());
  });

  it('stops both builds when the job is cancelled mid-build', async () => {
    const j = await job(fresh('multi/cancel'), ['SLEEP=60']);
    let signalled = false;
    const result = await runAction(j, {
      onOutput: (all, child) => {
        if (!signalled && (all.match(/RUN step on/g) ?? []).length >= 2) {
          signalled = true;
          child.kill('SIGTERM');
        }
      },
    });
    expect(signalled).toBe(true);
    expect(result.code, visible(result.output)).toBe(1);
    const ids = readFileSync(join(j.reportDir, 'build-id'), 'utf8').split('\n').filter(Boolean);
    expect(ids).toHaveLength(2);
    const builds = await fakeControl(stack.fakeUrl).builds();
    expect(ids.map((id) => builds.find((b) => b.id === id)?.buildStatus)).toEqual(['STOPPED', 'STOPPED']);
  });
});

describe('platforms with emulation: true', () => {
  it('builds every platform in one build on project_name through QEMU, one index under every tag', async () => {
    const repository = fresh('multi/emulated');
    const j = await job(repository, [], { CODEBUILD_IMAGE_EMULATION: 'true' });
    const result = await runAction(j);
    const log = visible(result.output);
    expect(result.code, log).toBe(0);
    expect(log).toContain('Emulation: QEMU handlers present for linux/amd64,linux/arm64');
    const record = JSON.parse(readFileSync(join(j.reportDir, 'build.json'), 'utf8'));
    expect(record).toMatchObject({ projectName: stack.projectName, imageIndex: true });
    expect(record.platforms).toBeUndefined();
    const dotenv = readDotenv(join(j.reportDir, 'build.env'));
    expect(await registryDigest(stack.registry, repository, 'latest')).toBe(dotenv.IMAGE_DIGEST);
    const images = await platformManifests(stack.registry, repository, 'latest');
    expect(images.map((m) => m.platform)).toEqual(['linux/amd64', 'linux/arm64']);
    expect(await archOf(repository, images[1]!.manifest)).toBe('aarch64');
  });
});
