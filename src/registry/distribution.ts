/**
 * The OCI distribution API, as much as the job's own registry work needs: read the manifests the per-platform
 * builds pushed by digest and put one image index over them under every tag; read, check and upload the blobs of
 * a signature (src/sign/). Registries on 127.0.0.0/8 and localhost are spoken to over plain HTTP, as Docker does;
 * every other one over HTTPS.
 */
import { createHash } from 'node:crypto';
import { AwsStepError, RegistryError } from '../shared/errors';

export const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
/** Media types of an image index (OCI) or manifest list (Docker). */
export const INDEX_TYPES = [OCI_INDEX, DOCKER_LIST];
const MANIFEST_TYPES = [OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, 'application/vnd.docker.distribution.manifest.v2+json'];

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

export interface Manifest {
  mediaType: string;
  digest: string;
  /** Present on an image index. */
  manifests?: Descriptor[];
  /** Present on an image manifest: its config blob, which names its platform. */
  config?: Descriptor;
  /** The exact bytes, whose sha256 is `digest`. */
  bytes: Buffer;
}

/** `username:password` for HTTP Basic, or for the token service a Bearer challenge names. */
export interface RegistryCredentials {
  username: string;
  password: string;
}

export interface RegistryClientOptions {
  /** Called once, on the first 401 that can take them; undefined means anonymous. */
  credentials?: () => Promise<RegistryCredentials | undefined>;
  fetch?: typeof fetch;
}

export function platformString(p: Platform | undefined): string {
  return p ? [p.os, p.architecture, p.variant].filter(Boolean).join('/') : '';
}

/** `linux/arm64/v8` and `linux/arm64` are one platform (v8 is arm64's only variant). */
function normalPlatform(platform: string): string {
  return platform.replace(/^([^/]+\/arm64)\/v8$/, '$1');
}

/** BuildKit's attestation manifest inside an image index, beside the image it describes. */
export function isAttestation(d: Descriptor): boolean {
  return d.annotations?.['vnd.docker.reference.type'] === 'attestation-manifest';
}

export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function isLoopback(host: string): boolean {
  const name = host.replace(/:\d+$/, '');
  return name === 'localhost' || /^127\.\d+\.\d+\.\d+$/.test(name) || name === '[::1]';
}

export class RegistryClient {
  private authorization: string | undefined;
  /** Read once: a push after a pull is challenged again, for the wider scope. */
  private credentials: Promise<RegistryCredentials | undefined> | undefined;
  private readonly base: string;
  private readonly fetch: typeof fetch;

  constructor(
    readonly host: string,
    private readonly options: RegistryClientOptions = {},
  ) {
    this.base = `${isLoopback(host) ? 'http' : 'https'}://${host}/v2`;
    this.fetch = options.fetch ?? fetch;
  }

  /** The manifest or index that `reference` (a tag or digest) names, verified against its digest. */
  async manifest(repository: string, reference: string): Promise<Manifest> {
    const found = await this.find(repository, reference);
    if (!found) throw new RegistryError(`reading ${this.host}/${repository}@${reference}`, 'the registry has no such manifest');
    return found;
  }

  /** Like manifest(), but undefined when the registry has no such manifest (or repository). */
  async find(repository: string, reference: string): Promise<Manifest | undefined> {
    const res = await this.request(repository, 'pull', `${repository}/manifests/${reference}`, { headers: { accept: MANIFEST_TYPES.join(', ') } });
    if (res.status === 404) return undefined;
    if (!res.ok) throw new RegistryError(`reading ${this.host}/${repository}@${reference}`, `the registry answered ${res.status}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    const digest = sha256Digest(bytes);
    if (reference.startsWith('sha256:') && reference !== digest) {
      throw new RegistryError(`reading ${this.host}/${repository}@${reference}`, `the registry served content with digest ${digest}`);
    }
    const doc = JSON.parse(bytes.toString('utf8')) as { mediaType?: string; manifests?: Descriptor[]; config?: Descriptor };
    const mediaType = doc.mediaType ?? res.headers.get('content-type') ?? '';
    return { mediaType, digest, bytes, ...(doc.manifests ? { manifests: doc.manifests } : {}), ...(doc.config ? { config: doc.config } : {}) };
  }

  /** The platform an image manifest's config blob records. */
  async platformOf(repository: string, manifest: Manifest): Promise<Platform | undefined> {
    if (!manifest.config) return undefined;
    const config = JSON.parse((await this.blob(repository, manifest.config.digest)).toString('utf8')) as { os?: string; architecture?: string; variant?: string };
    return { os: config.os ?? '', architecture: config.architecture ?? '', ...(config.variant ? { variant: config.variant } : {}) };
  }

  /** A blob's bytes, verified against its digest. */
  async blob(repository: string, digest: string): Promise<Buffer> {
    const res = await this.request(repository, 'pull', `${repository}/blobs/${digest}`, {});
    if (!res.ok) throw new RegistryError(`reading ${this.host}/${repository}@${digest}`, `the registry answered ${res.status}`);
    const bytes = Buffer.from(await res.arrayBuffer());
    const served = sha256Digest(bytes);
    if (served !== digest) throw new RegistryError(`reading ${this.host}/${repository}@${digest}`, `the registry served content with digest ${served}`);
    return bytes;
  }

  /**
   * Uploads `bytes` as a blob unless the repository has it already (a monolithic upload: POST, then PUT with the
   * digest to the Location the registry answered, which may be relative); returns its digest.
   */
  async pushBlob(repository: string, bytes: Buffer): Promise<string> {
    const digest = sha256Digest(bytes);
    const step = `uploading ${digest} to ${this.host}/${repository}`;
    const head = await this.request(repository, 'push,pull', `${repository}/blobs/${digest}`, { method: 'HEAD' });
    if (head.ok) return digest;
    if (head.status !== 404) throw new RegistryError(step, `the registry answered ${head.status} to HEAD`);
    const started = await this.request(repository, 'push,pull', `${repository}/blobs/uploads/`, { method: 'POST' });
    const location = started.headers.get('location');
    if (started.status !== 202 || !location) throw new RegistryError(step, `the registry answered ${started.status}${location ? '' : ' without a Location'} to POST ${repository}/blobs/uploads/`);
    const url = new URL(location, `${this.base}/`);
    url.searchParams.set('digest', digest);
    const put = await this.request(repository, 'push,pull', url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream' }, body: bytes });
    if (put.status !== 201) throw new RegistryError(step, `the registry answered ${put.status} ${(await put.text()).slice(0, 300)}`);
    return digest;
  }

  /** Puts `bytes` as the manifest `reference` (a tag); returns the digest the registry reports. */
  async putManifest(repository: string, reference: string, mediaType: string, bytes: Buffer): Promise<string> {
    const res = await this.request(repository, 'push,pull', `${repository}/manifests/${reference}`, {
      method: 'PUT',
      headers: { 'content-type': mediaType },
      body: bytes,
    });
    if (!res.ok) {
      const detail = (await res.text()).slice(0, 300);
      throw new RegistryError(`pushing ${this.host}/${repository}:${reference}`, `the registry answered ${res.status} ${detail}`);
    }
    return res.headers.get('docker-content-digest') ?? sha256Digest(bytes);
  }

  /** `target`: a path under /v2/, or a URL the registry answered (an upload's Location). */
  private async request(repository: string, actions: string, target: string | URL, init: RequestInit): Promise<Response> {
    const url = typeof target === 'string' ? new URL(`${this.base}/${target}`) : target;
    // The sign-in goes to the registry's own origin only, never to a Location elsewhere.
    const own = url.origin === new URL(this.base).origin;
    const send = () => reach(url, () => this.fetch(url, { ...init, headers: { ...(init.headers as Record<string, string>), ...(own && this.authorization ? { authorization: this.authorization } : {}) } }));
    let res = await send();
    if (res.status !== 401 || !own) return res;
    this.authorization = await this.authorize(res.headers.get('www-authenticate') ?? '', repository, actions);
    if (this.authorization === undefined) return res;
    res = await send();
    return res;
  }

  /** Answers a 401's challenge: Basic with the credentials, or a Bearer token from the realm it names. */
  private async authorize(challenge: string, repository: string, actions: string): Promise<string | undefined> {
    const basicOf = async () => {
      const credentials = await (this.credentials ??= this.options.credentials?.());
      return credentials ? `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}` : undefined;
    };
    if (/^basic\b/i.test(challenge)) return basicOf();
    if (!/^bearer\b/i.test(challenge)) return undefined;
    const params = Object.fromEntries([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (!params.realm) return undefined;
    const url = new URL(params.realm);
    // Credentials go to a token service over TLS only (a loopback one excepted, as for registries); they are
    // not even read for another.
    if (this.options.credentials && url.protocol !== 'https:' && !isLoopback(url.host)) {
      throw new RegistryError(`signing in to ${this.host}`, `its token service ${url.origin} is not HTTPS; no credentials were sent`);
    }
    const basic = await basicOf();
    if (params.service) url.searchParams.set('service', params.service);
    url.searchParams.set('scope', `repository:${repository}:${actions}`);
    const res = await reach(url, () => this.fetch(url, { headers: basic ? { authorization: basic } : {} }));
    if (!res.ok) throw new RegistryError(`signing in to ${this.host}`, `its token service answered ${res.status}`);
    const body = (await res.json()) as { token?: string; access_token?: string };
    const token = body.token ?? body.access_token;
    return token ? `Bearer ${token}` : undefined;
  }
}

/** A request that got no answer (refused, reset, TLS, a deadline) fails as a step, worded by errors.ts's connectionFailure. */
async function reach(url: URL, send: () => Promise<Response>): Promise<Response> {
  try {
    return await send();
  } catch (e) {
    throw new AwsStepError(`Connecting to ${url.host}`, e);
  }
}

async function imageDescriptor(client: RegistryClient, repository: string, m: Manifest): Promise<Descriptor> {
  const platform = await client.platformOf(repository, m);
  return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.length, ...(platform ? { platform } : {}) };
}

/** One platform's image as its build pushed it: a manifest, or (with attestations) an index of one image. */
export interface PlatformImage {
  platform: string;
  digest: string;
}

/**
 * Puts one OCI image index over the per-platform images under every tag and returns its digest. Each platform's
 * entries are taken as pushed (its image manifest, and the attestation manifest that refers to it, if any), and
 * the image's own platform must be the one asked for.
 */
export async function pushIndex(client: RegistryClient, repository: string, images: PlatformImage[], tags: string[]): Promise<string> {
  const manifests: Descriptor[] = [];
  for (const image of images) {
    const m = await client.manifest(repository, image.digest);
    const entries = m.manifests ?? [await imageDescriptor(client, repository, m)];
    const built = entries.filter((e) => !isAttestation(e)).map((e) => platformString(e.platform));
    if (built.length !== 1 || normalPlatform(built[0] ?? '') !== normalPlatform(image.platform)) {
      throw new RegistryError(
        `making the image index of ${client.host}/${repository}`,
        `the ${image.platform} build pushed ${built.join(', ') || 'no image'} (${image.digest}); check the platform's project`,
      );
    }
    manifests.push(...entries);
  }
  const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
  const digest = sha256Digest(bytes);
  for (const tag of tags) {
    const pushed = await client.putManifest(repository, tag, OCI_INDEX, bytes);
    if (pushed !== digest) throw new RegistryError(`pushing ${client.host}/${repository}:${tag}`, `the registry stored digest ${pushed}, not ${digest}`);
  }
  return digest;
}
