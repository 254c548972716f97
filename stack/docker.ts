import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { recordPid, startDaemon, waitFor, type Daemon } from './process';

/**
 * The stack's engine, unpacked by scripts/ensure-deps.sh: dockerd 28.5 with its containerd and the buildx plugin,
 * the generation CodeBuild's images run. `/usr/bin/docker` or `/usr/local/bin/docker` may be other clients.
 */
export const ENGINE_DIR = process.env.CBI_ENGINE_DIR ?? '/opt/codebuild-image/engine';
export const ENGINE_BIN = path.join(ENGINE_DIR, 'bin');
export const DOCKER_CLI = path.join(ENGINE_BIN, 'docker');

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
 * Moves the engine's data root aside and removes it, as far as it can: after a killed run, mounts of its containers
 * may still hold parts of it, which are left for the next start to try again.
 */
function setAsideData(root: string): void {
  const data = path.join(root, 'data');
  if (fs.existsSync(data)) fs.renameSync(data, path.join(root, `data.old-${process.pid}-${Date.now()}`));
  for (const old of fs.readdirSync(root).filter((name) => name.startsWith('data.old-'))) {
    try {
      fs.rmSync(path.join(root, old), { recursive: true, force: true });
    } catch {
      // busy: next time
    }
  }
}

/**
 * Starts a private dockerd (root only) on the containerd image store, with no networking changes to the host (no
 * iptables, no bridge): BuildKit builds with `--network host` run `RUN` steps, push to the loopback registry, and
 * export registry caches and attestations with the default `docker` driver, as the generated buildspec expects.
 */
export async function startDockerd(dir: string, opts: { fresh: boolean } = { fresh: false }): Promise<Dockerd> {
  if (process.getuid?.() !== 0) {
    throw new Error('the local stack runs its own dockerd, which needs root: run as root, or start the stack with docker: false');
  }
  const root = path.join(dir, 'docker');
  const execRoot = execRootFor(dir);
  if (opts.fresh) setAsideData(root);
  fs.mkdirSync(path.join(root, 'data'), { recursive: true });
  fs.mkdirSync(execRoot, { recursive: true });
  // A config file of its own keeps the host's /etc/docker/daemon.json out of the stack.
  const configFile = path.join(root, 'daemon.json');
  fs.writeFileSync(configFile, `${JSON.stringify({ features: { 'containerd-snapshotter': true } })}\n`);
  const host = dockerHostFor(dir);
  const socket = host.slice('unix://'.length);
  const daemon = startDaemon(
    dir,
    'dockerd',
    path.join(ENGINE_BIN, 'dockerd'),
    [
      '--config-file', configFile,
      '--iptables=false',
      '--ip-masq=false',
      '--bridge=none',
      '--data-root', path.join(root, 'data'),
      '--exec-root', execRoot,
      '--pidfile', path.join(root, 'dockerd.pid'),
      '--host', host,
      '--shutdown-timeout', '5',
    ],
    { env: { ...process.env, PATH: enginePath() } },
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

/** PATH with the engine's binaries (dockerd, containerd, runc) first. */
export function enginePath(): string {
  return `${ENGINE_BIN}:/usr/sbin:/usr/bin:/sbin:/bin:${process.env.PATH ?? ''}`;
}

/** Runs the engine's docker client (with buildx) against `host`. */
export async function docker(host: string, args: string[], configDir: string): Promise<string> {
  const { stdout } = await promisify(execFile)(DOCKER_CLI, args, {
    env: { ...process.env, DOCKER_HOST: host, DOCKER_CONFIG: configDir },
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/**
 * A docker client config dir of the stack's own, so the user's ~/.docker credentials never get involved; it holds
 * the engine's buildx plugin.
 */
export function dockerConfigDir(dir: string): string {
  const configDir = path.join(dir, 'docker', 'client');
  const plugins = path.join(configDir, 'cli-plugins');
  fs.mkdirSync(plugins, { recursive: true });
  fs.rmSync(path.join(plugins, 'docker-buildx'), { force: true });
  fs.symlinkSync(path.join(ENGINE_DIR, 'cli-plugins', 'docker-buildx'), path.join(plugins, 'docker-buildx'));
  return configDir;
}

/** Empties the engine as a fresh CodeBuild host is: no image, no build cache. */
export async function emptyEngine(host: string, configDir: string): Promise<void> {
  const run = (args: string[]) => docker(host, args, configDir);
  const images = (await run(['image', 'ls', '--all', '--quiet'])).split('\n').filter(Boolean);
  if (images.length > 0) await run(['image', 'rm', '--force', ...new Set(images)]);
  await run(['buildx', 'prune', '--all', '--force']);
}
