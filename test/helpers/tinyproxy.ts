// A real tinyproxy (Debian's) for one test file: on a free 127.0.0.1 port, its outgoing connections bound to
// 127.0.0.2 so a server can tell a proxied request (peer 127.0.0.2) from a direct one (127.0.0.1).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { freePort } from '../../stack/process';

export const PROXY_PEER = '127.0.0.2';

export interface Tinyproxy {
  port: number;
  url: string;
  stop(): Promise<void>;
}

/** `basicAuth`: the user and password the proxy requires. */
export async function startTinyproxy(options: { basicAuth?: { user: string; password: string } } = {}): Promise<Tinyproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'tinyproxy-'));
  const port = await freePort();
  const pidFile = join(dir, 'tinyproxy.pid');
  const config = [
    `Port ${port}`,
    'Listen 127.0.0.1',
    `Bind ${PROXY_PEER}`,
    'Allow 127.0.0.1',
    'Timeout 60',
    'LogLevel Info',
    `PidFile "${pidFile}"`,
    ...(options.basicAuth ? [`BasicAuth ${options.basicAuth.user} ${options.basicAuth.password}`] : []),
  ];
  writeFileSync(join(dir, 'tinyproxy.conf'), `${config.join('\n')}\n`);
  const child = spawn('/usr/bin/tinyproxy', ['-d', '-c', join(dir, 'tinyproxy.conf')], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  for (let i = 0; ; i++) {
    // Connecting, not binding: a probe that binds the port could take it from tinyproxy starting at that moment.
    const up = await new Promise<boolean>((resolve) => {
      const probe = connect(port, '127.0.0.1');
      probe.once('connect', () => {
        probe.destroy();
        resolve(true);
      });
      probe.once('error', () => resolve(false));
    });
    if (up) break;
    if (child.exitCode !== null || i > 100) throw new Error(`tinyproxy did not start: ${stderr}`);
    await delay(50);
  }
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    async stop() {
      // The process this helper started (tinyproxy -d stays in the foreground), by its PID.
      if (child.pid && child.exitCode === null) process.kill(child.pid, 'SIGTERM');
      if (child.exitCode === null) await new Promise((resolve) => child.once('exit', resolve));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
