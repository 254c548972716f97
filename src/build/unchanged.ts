/**
 * No build at all when nothing changed (`skip_unchanged`). Every build records its inputs on its image as a tag,
 * `cbi-inputs-<key>`, where the key is a hash of the context digest, the Dockerfile, target, platforms, build args
 * and attestation choices. A later job whose key finds that tag in the registry starts no CodeBuild build: it
 * puts the same manifest under its own tags and reports its digest. A moved base tag (`FROM node:22`) is not
 * rebuilt: the key does not see it.
 */
import { createHash } from 'node:crypto';
import { registryClient, type SignInClients } from '../registry/signin';
import type { Settings } from '../inputs/settings';

/** The tag that records a build's inputs on its image. */
export function inputsTag(s: Settings, contextDigest: string): string {
  const inputs = {
    context: contextDigest,
    dockerfile: s.dockerfile,
    target: s.target ?? null,
    platform: s.platform ?? null,
    platforms: s.platformBuilds.map((b) => `${b.platform}=${b.projectName}`),
    emulation: s.emulation,
    buildArgs: s.buildArgs.map((a) => `${a.name}=${a.value}`),
    // The references, never a value: a secret that changed behind the same reference is not seen.
    secretBuildArgs: s.secretBuildArgs.map((a) => `${a.name}=${a.type}:${a.reference}`),
    secretsAs: s.buildkit.secretsAs,
    attestations: s.buildkit.attestations,
    sbom: s.buildkit.sbom,
  };
  return `cbi-inputs-${createHash('sha256').update(JSON.stringify(inputs)).digest('hex').slice(0, 40)}`;
}

/**
 * When the registry holds an image built from these inputs, puts it under every tag and returns its digest and
 * media type; otherwise undefined, and a build is needed.
 */
export async function reuseUnchanged(s: Settings, tag: string, clients: SignInClients): Promise<{ digest: string; mediaType: string } | undefined> {
  const client = registryClient(s, clients);
  const found = await client.find(s.image.path, tag);
  if (!found) return undefined;
  for (const t of s.tags) await client.putManifest(s.image.path, t, found.mediaType, found.bytes);
  return { digest: found.digest, mediaType: found.mediaType };
}
