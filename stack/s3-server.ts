/**
 * Runs s3rver on 127.0.0.1 for the local stack:
 * `node --import tsx stack/s3-server.ts <directory> <bucket> <port> <ready-file> [--key FILE --cert FILE] [--proxy-only]`.
 * Writes `{"port": n}` to the ready file once listening. With --key and --cert it speaks https; with --proxy-only it
 * resets every connection whose peer is not the stack's proxy (PROXY_SOURCE_ADDRESS).
 *
 * s3rver only knows the access key `S3RVER`; the program signs with whatever temporary credentials the fake STS
 * issued, so every access key is mapped to s3rver's one account (it never checks SigV4 signatures anyway).
 */
import fs from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { refuseDirectConnections } from './fake-aws/options';

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
    if (values['proxy-only']) refuseDirectConnections(server.httpServer, 's3rver');
    fs.writeFileSync(readyFile, JSON.stringify({ port }));
    console.log(`s3rver listening on 127.0.0.1:${port}, bucket ${bucket}`);
  },
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
