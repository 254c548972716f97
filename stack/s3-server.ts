/**
 * Runs s3rver on 127.0.0.1 for the local stack: `node --import tsx stack/s3-server.ts <directory> <bucket> <port> <ready-file>`.
 * Writes `{"port": n}` to the ready file once listening.
 *
 * s3rver only knows the access key `S3RVER`; the program signs with whatever temporary credentials the fake STS
 * issued, so every access key is mapped to s3rver's one account (it never checks SigV4 signatures anyway).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';

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
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverServer;

const [directory, bucket, port, readyFile] = process.argv.slice(2);
if (!directory || !bucket || !port || !readyFile) {
  console.error('usage: s3-server.ts <directory> <bucket> <port> <ready-file>');
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
});
server.run().then(
  ({ port }) => {
    fs.writeFileSync(readyFile, JSON.stringify({ port }));
    console.log(`s3rver listening on 127.0.0.1:${port}, bucket ${bucket}`);
  },
  (e: unknown) => {
    console.error(e);
    process.exit(1);
  },
);
