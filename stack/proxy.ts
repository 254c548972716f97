import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { PROXY_SOURCE_ADDRESS } from './fake-aws/options';
import { freePort, startDaemon, waitFor, type Daemon } from './process';

export const TINYPROXY = '/usr/bin/tinyproxy';

export interface Proxy {
  daemon: Daemon;
  /** `http://127.0.0.1:<port>`: what a job is given as HTTPS_PROXY (or HTTP_PROXY). */
  url: string;
}

/**
 * Starts tinyproxy (Debian's, from scripts/ensure-deps.sh) on 127.0.0.1, taking clients from 127.0.0.1 only and
 * tunnelling CONNECT to `connectPorts` only. Its outgoing connections leave from 127.0.0.2 (`Bind`), which is how
 * the fake and s3rver in proxy-only mode tell a proxied request from a direct one.
 */
export async function startProxy(dir: string, connectPorts: number[]): Promise<Proxy> {
  const root = path.join(dir, 'proxy');
  fs.mkdirSync(root, { recursive: true });
  const port = await freePort();
  const config = path.join(root, 'tinyproxy.conf');
  fs.writeFileSync(
    config,
    [
      `Port ${port}`,
      'Listen 127.0.0.1',
      `Bind ${PROXY_SOURCE_ADDRESS}`,
      'Allow 127.0.0.1',
      ...connectPorts.map((p) => `ConnectPort ${p}`),
      `PidFile "${path.join(root, 'tinyproxy.pid')}"`,
      // One line per client connection and request: the stack's log shows what went through the proxy.
      'LogLevel Connect',
      // Live Tail keeps a response open for as long as the build runs.
      'Timeout 3600',
      'MaxClients 200',
      '',
    ].join('\n'),
  );
  // -d: in the foreground, so the PID the stack records is tinyproxy's own.
  const daemon = startDaemon(dir, 'proxy', TINYPROXY, ['-d', '-c', config]);
  await waitFor(daemon, `tinyproxy on 127.0.0.1:${port}`, () => listening(port));
  return { daemon, url: `http://127.0.0.1:${port}` };
}

/** True once something accepts connections on 127.0.0.1:`port`; undefined before. */
function listening(port: number): Promise<true | undefined> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(undefined));
  });
}
