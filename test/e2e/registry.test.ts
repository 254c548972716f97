/**
 * src/registry/distribution.ts against Debian's docker-registry on the local stack: an index over per-platform images that
 * BuildKit pushed by digest, with their attestation manifests, under every tag.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pushIndex, RegistryClient } from '../../src/registry/distribution';
import { docker } from '../../stack/docker';
import { getManifest, platformManifests } from '../../stack/registry';
import type { Stack } from '../../stack/stack';
import { registryDigest } from './helpers';
import { sharedStack } from './stack-for-file';

let stack: Stack;
sharedStack((s) => (stack = s));

/**
 * Builds a small image for one platform and pushes it under a tag of its own, as a platform's build does
 * (BuildKit's docker driver cannot push by digest alone); returns its digest.
 */
async function pushByDigest(repository: string, platform: string, attestations: boolean): Promise<string> {
  const dir = mkdtempSync(join(stack.dir, 'by-digest-'));
  writeFileSync(join(dir, 'Dockerfile'), `FROM ${stack.baseImage ?? ''}\nRUN uname -m > /arch.txt\n`);
  const meta = join(dir, 'metadata.json');
  try {
    await docker(stack.dockerHost ?? '', [
      'buildx', 'build', '--quiet', '--network', 'host', '--platform', platform, '--metadata-file', meta,
      attestations ? '--provenance=mode=max' : '--provenance=false',
      '--tag', `${stack.registry}/${repository}:build-${platform.replace('/', '-')}`, '--push', dir,
    ], stack.dockerConfig);
    return (JSON.parse(readFileSync(meta, 'utf8')) as Record<string, string>)['containerimage.digest'] ?? '';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('pushIndex', () => {
  it('puts one index over two platforms, attestations included, under every tag', async () => {
    const repository = `multi/app-${Date.now().toString(36)}`;
    const amd64 = await pushByDigest(repository, 'linux/amd64', true);
    const arm64 = await pushByDigest(repository, 'linux/arm64', true);
    const client = new RegistryClient(stack.registry);
    const digest = await pushIndex(client, repository, [{ platform: 'linux/amd64', digest: amd64 }, { platform: 'linux/arm64', digest: arm64 }], ['v1', 'latest']);

    for (const tag of ['v1', 'latest']) expect(await registryDigest(stack.registry, repository, tag)).toBe(digest);
    const index = await getManifest(stack.registry, repository, digest);
    expect(index.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(index.manifests?.map((m) => m.annotations?.['vnd.docker.reference.type'] ?? `${m.platform?.os}/${m.platform?.architecture}`)).toEqual([
      'linux/amd64', 'attestation-manifest', 'linux/arm64', 'attestation-manifest',
    ]);
    expect((await platformManifests(stack.registry, repository, 'latest')).map((m) => m.platform)).toEqual(['linux/amd64', 'linux/arm64']);
  });

  it('takes single manifests (no attestations) and refuses an image of the wrong platform', async () => {
    const repository = `multi/plain-${Date.now().toString(36)}`;
    const amd64 = await pushByDigest(repository, 'linux/amd64', false);
    const client = new RegistryClient(stack.registry);
    const digest = await pushIndex(client, repository, [{ platform: 'linux/amd64', digest: amd64 }], ['only']);
    expect((await getManifest(stack.registry, repository, digest)).manifests).toHaveLength(1);
    await expect(pushIndex(client, repository, [{ platform: 'linux/arm64', digest: amd64 }], ['wrong'])).rejects.toThrow(
      /the linux\/arm64 build pushed linux\/amd64/,
    );
    expect(await registryDigest(stack.registry, repository, 'wrong')).toBeUndefined();
  });
});
