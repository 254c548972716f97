/**
 * The containerd-store builder on an engine like CodeBuild's: a dockerd started without the containerd image store
 * (as the images' dockerd-entrypoint.sh starts it) is restarted by the build script's `prepare` step, with the same
 * arguments, on that store. The stack's own dockerd already uses the store, so only this test runs that path.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILD_SCRIPT } from '../../src/build/build-script';
import { ENGINE_BIN, dockerConfigDir, enginePath, execRootFor } from '../../stack/docker';
import { startDaemon, stopPid, waitFor } from '../../stack/process';
import { repoRoot } from '../helpers/gitlab-ci-local';

const dir = path.join(repoRoot, '.stack', 'engine-restart');
const execRoot = execRootFor(dir);
const pidfile = path.join(dir, 'docker.pid');
const host = `unix://${execRoot}/docker.sock`;
const env = {
  PATH: enginePath(),
  HOME: dir,
  DOCKER_HOST: host,
  DOCKER_CONFIG: dockerConfigDir(dir),
  CBI_BUILDER: 'containerd-store',
  CBI_DOCKERD_PIDFILE: pidfile,
  CBI_DOCKERD_LOG: path.join(dir, 'dockerd-restarted.log'),
};
const docker = (...args: string[]) => spawnSync(path.join(ENGINE_BIN, 'docker'), args, { env, encoding: 'utf8' });
/** Runs the step asynchronously, so this process keeps reaping its children (the dockerd it started) meanwhile. */
function prepare(): Promise<{ status: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', BUILD_SCRIPT, 'prepare'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stdout += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout }));
  });
}
const pid = () => Number(fs.readFileSync(pidfile, 'utf8').trim());
const argv = (p: number) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').filter(Boolean);
const driverStatus = () => docker('info', '--format', '{{json .DriverStatus}}').stdout;

beforeAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  fs.mkdirSync(execRoot, { recursive: true });
  fs.writeFileSync(path.join(dir, 'daemon.json'), '{}\n');
  const daemon = startDaemon(dir, 'dockerd', path.join(ENGINE_BIN, 'dockerd'), [
    '--config-file', path.join(dir, 'daemon.json'),
    '--storage-driver', 'vfs',
    '--iptables=false', '--ip-masq=false', '--bridge=none',
    '--data-root', path.join(dir, 'data'),
    '--exec-root', execRoot,
    '--pidfile', pidfile,
    '--host', host,
  ], { env: { ...process.env, PATH: enginePath() } });
  await waitFor(daemon, `dockerd on ${host}`, async () => (docker('info').status === 0 ? true : undefined));
});

afterAll(async () => {
  if (fs.existsSync(pidfile)) await stopPid(pid());
  fs.rmSync(execRoot, { recursive: true, force: true });
});

describe('prepare with builder containerd-store', () => {
  it('restarts a classic dockerd on the containerd image store, with its own arguments', async () => {
    expect(driverStatus()).not.toContain('io.containerd.snapshotter');
    const before = pid();
    const args = argv(before);

    const result = await prepare();
    expect(result.status, result.stdout).toBe(0);
    expect(result.stdout).toContain('Restarting dockerd on the containerd image store');
    expect(driverStatus()).toContain('io.containerd.snapshotter');
    const after = pid();
    expect(after).not.toBe(before);
    expect(argv(after)).toEqual([...args, '--feature', 'containerd-snapshotter=true']);
  });

  it('leaves a dockerd already on the store alone', async () => {
    const before = pid();
    const result = await prepare();
    expect(result.status, result.stdout).toBe(0);
    expect(result.stdout).toContain('Builder: Docker engine on the containerd image store');
    expect(pid()).toBe(before);
  });
});
