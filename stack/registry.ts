import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort, startDaemon, waitFor, type Daemon } from './process';

export interface Registry {
  daemon: Daemon;
  /** `127.0.0.1:<port>`; Docker treats loopback registries as insecure (plain HTTP) without configuration. */
  host: string;
}

/** Starts Debian's `docker-registry` (distribution v2) with filesystem storage under `<dir>/registry`. */
export async function startRegistry(dir: string): Promise<Registry> {
  const root = path.join(dir, 'registry');
  fs.mkdirSync(path.join(root, 'data'), { recursive: true });
  const host = `127.0.0.1:${await freePort()}`;
  const config = path.join(root, 'config.yml');
  fs.writeFileSync(
    config,
    stringify({
      version: 0.1,
      log: { level: 'warn', accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: path.join(root, 'data') }, delete: { enabled: true } },
      http: { addr: host },
    }),
  );
  const daemon = startDaemon(dir, 'registry', '/usr/bin/docker-registry', ['serve', config]);
  await waitFor(daemon, `registry on ${host}`, async () => ((await fetch(`http://${host}/v2/`)).ok ? true : undefined));
  return { daemon, host };
}

/** The digest of `repository:tag` in the registry, or undefined when it is not there. */
export async function manifestDigest(host: string, repository: string, tag: string): Promise<string | undefined> {
  const res = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, {
    method: 'HEAD',
    headers: {
      accept: [
        'application/vnd.docker.distribution.manifest.v2+json',
        'application/vnd.docker.distribution.manifest.list.v2+json',
        'application/vnd.oci.image.manifest.v1+json',
        'application/vnd.oci.image.index.v1+json',
      ].join(', '),
    },
  });
  if (res.status === 404) return undefined;
  if (!res.ok) throw new Error(`registry ${host} answered ${res.status} for ${repository}:${tag}`);
  return res.headers.get('docker-content-digest') ?? undefined;
}

const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

interface Descriptor {
  mediaType: string;
  digest: string;
  platform?: { os: string; architecture: string; variant?: string };
  annotations?: Record<string, string>;
}

/** An image index or manifest as the registry serves it. */
export interface Manifest {
  mediaType: string;
  manifests?: Descriptor[];
  config?: Descriptor;
  layers?: Descriptor[];
}

/** The manifest or index for `reference` (a tag or digest), parsed. */
export async function getManifest(host: string, repository: string, reference: string): Promise<Manifest> {
  const res = await fetch(`http://${host}/v2/${repository}/manifests/${reference}`, { headers: { accept: MANIFEST_ACCEPT } });
  if (!res.ok) throw new Error(`registry ${host} answered ${res.status} for ${repository}@${reference}`);
  return (await res.json()) as Manifest;
}

/** A blob's bytes. */
export async function getBlob(host: string, repository: string, digest: string): Promise<Buffer> {
  const res = await fetch(`http://${host}/v2/${repository}/blobs/${digest}`);
  if (!res.ok) throw new Error(`registry ${host} answered ${res.status} for blob ${digest} of ${repository}`);
  return Buffer.from(await res.arrayBuffer());
}

/**
 * Every image manifest under `reference` (itself, or the platform entries of an index, attestation manifests
 * excluded), with its platform.
 */
export async function platformManifests(host: string, repository: string, reference: string): Promise<{ digest: string; platform: string; manifest: Manifest }[]> {
  const top = await getManifest(host, repository, reference);
  if (!top.manifests) return [{ digest: reference, platform: '', manifest: top }];
  const images = top.manifests.filter((m) => m.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest');
  return Promise.all(
    images.map(async (m) => ({
      digest: m.digest,
      platform: [m.platform?.os, m.platform?.architecture, m.platform?.variant].filter(Boolean).join('/'),
      manifest: await getManifest(host, repository, m.digest),
    })),
  );
}
