import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FIRST_PICKED_PORT, freePort, groupMembers, lowestEphemeralPort, isAlive, isOurs, recordedPids, startDaemon, stopPid, waitFor } from '../../stack/process';
import { shellExports, stopStack } from '../../stack/stack';

const dirs: string[] = [];
const pids: number[] = [];

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cbi-stack-unit-'));
  dirs.push(dir);
  return dir;
}

/** A shell that sleeps; `$0` is a path in the stack's `fake/` state dir, as a real daemon's arguments are. */
function sleeper(dir: string, name: string, script = 'sleep 300') {
  const daemon = startDaemon(dir, name, '/bin/sh', ['-c', script, path.join(dir, 'fake', name)]);
  pids.push(daemon.pid);
  return daemon;
}

afterEach(async () => {
  for (const pid of pids.splice(0)) if (isAlive(pid)) await stopPid(pid, 100);
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

describe('stack processes', () => {
  it('records each daemon by PID and recognises it by the directory in its command line', () => {
    const dir = tempDir();
    const daemon = sleeper(dir, 'one');
    expect(recordedPids(dir).get('one')).toBe(daemon.pid);
    expect(isOurs(daemon.pid, [`${dir}/`])).toBe(true);
    expect(isOurs(daemon.pid, ['/some/other/stack/'])).toBe(false);
  });

  it('kills a daemon that ignores SIGTERM once the grace period is over', async () => {
    const dir = tempDir();
    const daemon = sleeper(dir, 'stubborn', 'trap "" TERM; while :; do sleep 1; done');
    // Wait until the trap is installed, or SIGTERM could arrive first and end the shell too early to tell.
    await new Promise((r) => setTimeout(r, 200));
    await stopPid(daemon.pid, 300);
    expect(isAlive(daemon.pid)).toBe(false);
    // The group goes too: the `sleep` child of the shell is not left behind.
    expect(groupMembers(daemon.pid)).toEqual([]);
  });

  it('down stops the recorded daemons of its directory only, and forgets them', async () => {
    const dir = tempDir();
    // Another stack's directory inside this one (as .stack/demo inside the default .stack).
    const other = path.join(dir, 'demo');
    const mine = sleeper(dir, 'mine');
    // A PID file pointing at a process of another stack (as after PID reuse) must not get it killed.
    const foreign = sleeper(other, 'foreign');
    fs.writeFileSync(path.join(dir, 'pids', 'recycled.pid'), `${foreign.pid}\n`);

    await stopStack(dir);

    expect(isAlive(mine.pid)).toBe(false);
    expect(isAlive(foreign.pid)).toBe(true);
    expect(recordedPids(dir).size).toBe(0);
  });

  it('waitFor reports the end of the log when the daemon dies before it is ready', async () => {
    const dir = tempDir();
    const daemon = sleeper(dir, 'crashing', 'echo "listen tcp: address already in use" >&2; exit 3');
    await expect(waitFor(daemon, 'crashing daemon', async () => undefined)).rejects.toThrow(
      /crashing daemon: crashing exited \(3\)[\s\S]*address already in use/,
    );
  });
});

describe('shellExports', () => {
  it('quotes values for the shell and leaves out what the stack does not have', () => {
    const info = {
      dir: '/x/.stack',
      env: { AWS_REGION: 'us-east-1' },
      inputs: { CODEBUILD_IMAGE_PROJECT_NAME: "it's" },
      registry: '127.0.0.1:5000',
      baseImage: undefined,
      dockerHost: undefined,
      dockerConfig: '/x/.stack/docker/client',
      fakeUrl: 'http://127.0.0.1:1',
    };
    const lines = shellExports(info).split('\n');
    expect(lines).toContain("export AWS_REGION='us-east-1'");
    expect(lines).toContain(`export CODEBUILD_IMAGE_PROJECT_NAME='it'\\''s'`);
    expect(lines.some((l) => l.startsWith('export STACK_DOCKER_HOST='))).toBe(false);
  });
});

describe('freePort', () => {
  it('gives a port below the ephemeral range, where no outgoing connection takes it meanwhile, that can be bound', async (ctx) => {
    const lowest = lowestEphemeralPort();
    if (lowest === undefined || lowest - FIRST_PICKED_PORT <= 1_000) ctx.skip(); // the kernel's pick then
    const ports = await Promise.all(Array.from({ length: 5 }, () => freePort()));
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(FIRST_PICKED_PORT);
      expect(port).toBeLessThan(lowest ?? 0);
      const server = net.createServer();
      await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
