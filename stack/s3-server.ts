/**
 * Runs s3rver on 127.0.0.1 for the local stack (which runs it from a bundle: stack/daemon-script.ts):
 * `node --import tsx stack/s3-server.ts <directory> <bucket> <port> <ready-file> [--key FILE --cert FILE] [--proxy-only]`.
 * Writes `{"port": n}` to the ready file once listening. With --key and --cert it speaks https; with --proxy-only it
 * resets every connection whose peer is not the stack's proxy (PROXY_SOURCE_ADDRESS).
 * Every access key is taken as s3rver's one account (stack/s3rver-keys.ts).
 */
import fs from 'node:fs';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';
import { refuseDirectConnections } from './fake-aws/options';
import { acceptAnyAccessKey } from './s3rver-keys';

const require = createRequire(import.meta.url);

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

acceptAnyAccessKey();

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
