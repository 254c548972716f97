/**
 * Runs s3rver on 127.0.0.1 for the local stack:
 * `node --import tsx stack/s3-server.ts <directory> <bucket> <port> <ready-file> [--key FILE --cert FILE] [--proxy-only]`.
 * Writes `{"port": n}` to the ready file once listening. With --key and --cert it speaks https; with --proxy-only it
 * answers 403 AccessDenied to every request whose peer is not the stack's proxy (PROXY_SOURCE_ADDRESS).
 *
 * s3rver only knows the access key `S3RVER`; the program signs with whatever temporary credentials the fake STS
 * issued, so every access key is mapped to s3rver's one account (it never checks SigV4 signatures anyway).
 */
import fs from 'node:fs';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { PROXY_SOURCE_ADDRESS } from './fake-aws/options';
import { xmlEscape } from './fake-aws/protocol';

const require = createRequire(import.meta.url);

interface S3rverAccount {
  id: number;
}
interface S3rverAccountModule {
  registry: Map<string, S3rverAccount>;
  DUMMY_ACCOUNT: S3rverAccount;
}
interface S3rverServer {
  run(): Promise<{ address: string; port: number }>;
  httpServer: Server;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverServer;

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { key: { type: 'string' }, cert: { type: 'string' }, 'proxy-only': { type: 'boolean' } },
});
const [directory, bucket, port, readyFile] = positionals;
if (!directory || !bucket || !port || !readyFile || Boolean(values.key) !== Boolean(values.cert)) {
  console.error('usage: s3-server.ts <directory> <bucket> <port> <ready-file> [--key FILE --cert FILE] [--proxy-only]');
  process.exit(2);
}

const accounts = require('s3rver/lib/models/account') as S3rverAccountModule;
const known = accounts.registry.get.bind(accounts.registry);
accounts.registry.get = (accessKeyId: string) => known(accessKeyId) ?? accounts.DUMMY_ACCOUNT;

const S3rver = require('s3rver') as S3rverClass;
fs.mkdirSync(directory, { recursive: true });
const server = new S3rver({
  address: '127.0.0.1',
  port: Number(port),
  directory,
  silent: false,
  vhostBuckets: false,
  allowMismatchedSignatures: true,
  configureBuckets: [{ name: bucket, configs: [] }],
  ...(values.key && values.cert ? { key: fs.readFileSync(values.key), cert: fs.readFileSync(values.cert) } : {}),
});
server.run().then(
  ({ port }) => {
    if (values['proxy-only']) onlyThroughProxy(server.httpServer);
    fs.writeFileSync(readyFile, JSON.stringify({ port }));
    console.log(`s3rver listening on 127.0.0.1:${port}, bucket ${bucket}`);
  },
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);

/** Puts a check in front of s3rver's request handler: requests that did not come through the proxy get S3's 403. */
function onlyThroughProxy(httpServer: Server): void {
  const handlers = httpServer.listeners('request') as ((req: IncomingMessage, res: ServerResponse) => void)[];
  httpServer.removeAllListeners('request');
  httpServer.on('request', (req: IncomingMessage, res: ServerResponse) => {
    if (req.socket.remoteAddress === PROXY_SOURCE_ADDRESS) {
      for (const handle of handlers) handle(req, res);
      return;
    }
    const message = `s3rver runs in proxy-only mode and refuses this request from ${req.socket.remoteAddress ?? 'an unknown address'}: only requests through the local stack's proxy (HTTPS_PROXY) are served`;
    res.writeHead(403, { 'content-type': 'application/xml' });
    res.end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>${xmlEscape(message)}</Message></Error>`);
  });
}
