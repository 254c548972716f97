import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { freePort, startDaemon, waitFor, type Daemon } from './process';

export interface Registry {
  daemon: Daemon;
  /** `127.0.0.1:<port>`; Docker treats loopback registries as insecure (plain HTTP) without configuration. */
  host: string;
}

/** A username and password of a registry that requires them. */
export interface RegistryUser {
  username: string;
  password: string;
}

/**
 * Starts Debian's `docker-registry` (distribution v2) with filesystem storage under `<dir>/<name>`; with `auth`, it
 * requires one of those users (htpasswd, bcrypt, as distribution accepts only bcrypt there).
 */
export async function startRegistry(dir: string, opts: { name?: string; auth?: RegistryUser[] } = {}): Promise<Registry> {
  const name = opts.name ?? 'registry';
  const root = path.join(dir, name);
  const storage = registryStorage(dir, name);
  fs.mkdirSync(storage, { recursive: true });
  const host = `127.0.0.1:${await freePort()}`;
  const config = path.join(root, 'config.yml');
  let auth = {};
  if (opts.auth) {
    const htpasswd = path.join(root, 'htpasswd');
    // -i reads the password from standard input, so it never appears in a process list.
    opts.auth.forEach((user, i) =>
      execFileSync('htpasswd', ['-B', ...(i === 0 ? ['-c'] : []), '-i', htpasswd, user.username], { input: user.password, stdio: ['pipe', 'ignore', 'pipe'] }),
    );
    auth = { auth: { htpasswd: { realm: name, path: htpasswd } } };
  }
  fs.writeFileSync(
    config,
    stringify({
      version: 0.1,
      log: { level: 'warn', accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: storage }, delete: { enabled: true } },
      http: { addr: host },
      ...auth,
    }),
  );
  const daemon = startDaemon(dir, name, '/usr/bin/docker-registry', ['serve', config]);
  // /v2/ answers 401 to anyone without credentials once auth is on: that, too, means the registry is up.
  const up = (status: number) => status === 200 || (opts.auth !== undefined && status === 401);
  await waitFor(daemon, `${name} on ${host}`, async () => (up((await fetch(`http://${host}/v2/`)).status) ? true : undefined));
  return { daemon, host };
}

/** The storage root of the stack's registry `name` (`registry`, `registry-auth`). */
export function registryStorage(dir: string, name = 'registry'): string {
  return path.join(dir, name, 'data');
}

/** Copies every platform of `source` to `target` (plain HTTP registries), logging in to the target as `user`. */
export function copyImage(dir: string, source: string, target: string, user: RegistryUser): void {
  const authFile = path.join(dir, 'skopeo-auth.json');
  const registry = target.slice(0, target.indexOf('/'));
  fs.writeFileSync(authFile, JSON.stringify({ auths: { [registry]: { auth: basicCredentials(user) } } }), { mode: 0o600 });
  try {
    execFileSync('skopeo', ['copy', '--all', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-authfile', authFile,
      `docker://${source}`, `docker://${target}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  } finally {
    fs.rmSync(authFile, { force: true });
  }
}

/** The digest of `repository:tag` in the registry, or undefined when it is not there. */
export async function manifestDigest(host: string, repository: string, tag: string, user?: RegistryUser): Promise<string | undefined> {
  const res = await fetch(`http://${host}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: manifestHeaders(user) });
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

/** Accept every manifest type; as `user` when the registry requires one. */
function manifestHeaders(user?: RegistryUser): Record<string, string> {
  return { accept: MANIFEST_ACCEPT, ...(user && { authorization: `Basic ${basicCredentials(user)}` }) };
}

/** `user:password` in base64, as HTTP Basic and docker's config.json carry it. */
export function basicCredentials(user: RegistryUser): string {
  return Buffer.from(`${user.username}:${user.password}`).toString('base64');
}

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
export async function getManifest(host: string, repository: string, reference: string, user?: RegistryUser): Promise<Manifest> {
  const res = await fetch(`http://${host}/v2/${repository}/manifests/${reference}`, { headers: manifestHeaders(user) });
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
export async function platformManifests(host: string, repository: string, reference: string, user?: RegistryUser): Promise<{ digest: string; platform: string; manifest: Manifest }[]> {
  const top = await getManifest(host, repository, reference, user);
  if (!top.manifests) return [{ digest: reference, platform: '', manifest: top }];
  const images = top.manifests.filter((m) => m.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest');
  return Promise.all(
    images.map(async (m) => ({
      digest: m.digest,
      platform: [m.platform?.os, m.platform?.architecture, m.platform?.variant].filter(Boolean).join('/'),
      manifest: await getManifest(host, repository, m.digest, user),
    })),
  );
}
