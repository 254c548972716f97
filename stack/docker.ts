import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { manifestDigest } from './registry';
import { recordPid, startDaemon, waitFor, type Daemon } from './process';

/** Debian's docker.io client (20.10), which matches the daemon; /usr/local/bin/docker may be another client. */
export const DOCKER_CLI = '/usr/bin/docker';
export const BASE_IMAGE_REPOSITORY = 'busybox';
export const BASE_IMAGE_TAG = 'stable';

export interface Dockerd {
  daemon: Daemon;
  /** `unix:///tmp/cbi-…/docker.sock` */
  host: string;
  /** dockerd's exec root (sockets, containerd state); short because unix socket paths are limited to 107 bytes. */
  execRoot: string;
}

/** Short per-stack directory for sockets, derived from the state directory so two stacks never share one. */
export function execRootFor(dir: string): string {
  return `/tmp/cbi-${createHash('sha256').update(path.resolve(dir)).digest('hex').slice(0, 12)}`;
}

/** The socket the stack's dockerd listens on, known before it starts. */
export function dockerHostFor(dir: string): string {
  return `unix://${path.join(execRootFor(dir), 'docker.sock')}`;
}

/**
 * Starts a private dockerd (root only) with the vfs storage driver and no networking changes to the host
 * (no iptables, no bridge): builds run with `RUN` steps and push to the loopback registry.
 */
export async function startDockerd(dir: string): Promise<Dockerd> {
  if (process.getuid?.() !== 0) {
    throw new Error('the local stack runs its own dockerd, which needs root: run as root, or start the stack with docker: false');
  }
  const root = path.join(dir, 'docker');
  const execRoot = execRootFor(dir);
  fs.mkdirSync(path.join(root, 'data'), { recursive: true });
  fs.mkdirSync(execRoot, { recursive: true });
  // An empty config file keeps the host's /etc/docker/daemon.json out of the stack.
  const configFile = path.join(root, 'daemon.json');
  fs.writeFileSync(configFile, '{}\n');
  const host = dockerHostFor(dir);
  const socket = host.slice('unix://'.length);
  const daemon = startDaemon(
    dir,
    'dockerd',
    '/usr/sbin/dockerd',
    [
      '--config-file', configFile,
      '--storage-driver', 'vfs',
      '--iptables=false',
      '--ip-masq=false',
      '--bridge=none',
      '--data-root', path.join(root, 'data'),
      '--exec-root', execRoot,
      '--pidfile', path.join(root, 'dockerd.pid'),
      '--host', host,
      '--shutdown-timeout', '5',
    ],
    { env: { ...process.env, PATH: `/usr/sbin:/usr/bin:/sbin:/bin:${process.env.PATH ?? ''}` } },
  );
  await waitFor(daemon, `dockerd on ${host}`, async () => ((await ping(socket)) ? true : undefined));
  // dockerd's containerd runs in its own session; record it so `down` can clean up after a killed dockerd.
  const containerdPid = Number(fs.readFileSync(path.join(execRoot, 'containerd', 'containerd.pid'), 'utf8').trim());
  if (containerdPid > 1) recordPid(dir, 'containerd', containerdPid);
  return { daemon, host, execRoot };
}

function ping(socketPath: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const req = http.get({ socketPath, path: '/_ping', timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on('timeout', () => req.destroy(new Error('no answer from dockerd')));
    req.on('error', reject);
  });
}

/** Runs the docker client against `host` with the classic builder. */
export async function docker(host: string, args: string[], configDir: string): Promise<string> {
  const { stdout } = await promisify(execFile)(DOCKER_CLI, args, {
    env: { ...process.env, DOCKER_HOST: host, DOCKER_BUILDKIT: '0', DOCKER_CONFIG: configDir },
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/**
 * Makes `<registry>/busybox:stable` available: base images cannot be pulled here, so it is built `FROM scratch`
 * from the host's static busybox and pushed, unless the registry (persisted in the state dir) already has it.
 * Returns the image reference.
 */
export async function ensureBaseImage(dir: string, dockerHost: string, registry: string): Promise<string> {
  const ref = `${registry}/${BASE_IMAGE_REPOSITORY}:${BASE_IMAGE_TAG}`;
  if (await manifestDigest(registry, BASE_IMAGE_REPOSITORY, BASE_IMAGE_TAG)) return ref;
  const context = path.join(dir, 'base-image');
  fs.mkdirSync(context, { recursive: true });
  fs.copyFileSync('/bin/busybox', path.join(context, 'busybox'));
  fs.writeFileSync(
    path.join(context, 'Dockerfile'),
    ['FROM scratch', 'COPY busybox /bin/busybox', 'RUN ["/bin/busybox", "--install", "-s", "/bin"]', ''].join('\n'),
  );
  const configDir = dockerConfigDir(dir);
  try {
    await docker(dockerHost, ['build', '--quiet', '--tag', ref, context], configDir);
    await docker(dockerHost, ['push', ref], configDir);
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr?.trim();
    throw new Error(`building the base image ${ref} failed${stderr ? `: ${stderr}` : ''}`, { cause: e });
  }
  return ref;
}

/** A docker client config dir of the stack's own, so the user's ~/.docker credentials never get involved. */
export function dockerConfigDir(dir: string): string {
  const configDir = path.join(dir, 'docker', 'client');
  fs.mkdirSync(configDir, { recursive: true });
  return configDir;
}
