/**
 * A forward proxy for plain-HTTP requests (absolute-form, as HTTP_PROXY sends them) that misbehaves on purpose:
 * it can hand on each answer only once it is complete (as some scanning proxies do, which holds an event stream
 * for good), and never answer the requests `hold` picks. Tests stop it with close().
 */
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface MeddlingProxy {
  url: string;
  /** The requests held so far, as "METHOD path". */
  held: string[];
  close(): Promise<void>;
}

export async function startMeddlingProxy(opts: { buffer?: boolean; hold?: (req: IncomingMessage, url: URL) => boolean }): Promise<MeddlingProxy> {
  const held: string[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/');
    if (opts.hold?.(req, url)) {
      held.push(`${req.method} ${url.pathname}${url.search}`);
      return;
    }
    forward(req, res, url, opts.buffer ?? false);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    held,
    close: () => new Promise((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

function forward(req: IncomingMessage, res: ServerResponse, url: URL, buffer: boolean): void {
  const upstream = request(url, { method: req.method, headers: req.headers }, (answer) => {
    if (!buffer) {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
      return;
    }
    const chunks: Buffer[] = [];
    answer.on('data', (c: Buffer) => chunks.push(c));
    answer.on('end', () => {
      const { 'transfer-encoding': _chunked, ...headers } = answer.headers;
      const body = Buffer.concat(chunks);
      res.writeHead(answer.statusCode ?? 502, { ...headers, 'content-length': String(body.length) });
      res.end(body);
    });
  });
  upstream.on('error', () => res.destroy());
  req.pipe(upstream);
}
