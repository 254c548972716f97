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
