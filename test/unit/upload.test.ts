import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  AbortMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
  S3Client,
  S3ServiceException,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listContext } from '../../src/context/listing';
import { AwsStepError, ContextError } from '../../src/shared/errors';
import { FilePool } from '../../src/context/pack-files';
import { contextKey, humanSize, uploadContext, type ContextToUpload } from '../../src/context/upload';
import { hashContext } from '../../src/context/prepare';
import { archiveSizeBound, packContext, packContextTo } from '../../src/context/zip';
import { memoryOutput } from '../helpers/output';
import { startS3rver, type S3rverInstance } from '../helpers/s3rver-instance';

const BUCKET = 'codebuild-image-000000000000-us-east-1';
let s3rver: S3rverInstance;
let s3: S3Client;
let dir: string;
let pool: FilePool;
const savedEndpoint = process.env.AWS_ENDPOINT_URL_S3;

/** A build context directory holding `files` (name → content). */
function contextDir(name: string, files: Record<string, Buffer>): string {
  const root = path.join(dir, name);
  for (const [file, data] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, file)), { recursive: true });
    fs.writeFileSync(path.join(root, file), data);
  }
  return root;
}

/** The context as commands/build.ts hands it to uploadContext; counts how often it is packed. */
async function named(root: string): Promise<ContextToUpload & { packed: number }> {
  const entries = await listContext(root, memoryOutput());
  const { digest, fileHashes } = await hashContext(entries, pool);
  const context = {
    digest,
    fileCount: entries.length,
    maxSize: archiveSizeBound(entries),
    packed: 0,
    write: (target: Parameters<ContextToUpload['write']>[0]) => {
      context.packed++;
      return packContextTo(entries, target, { pool, expected: fileHashes });
    },
    cancel: () => Promise.resolve(),
  };
  return context;
}

/** The archive packContext writes to a file for the same directory. */
async function archiveBytes(root: string): Promise<Buffer> {
  const file = path.join(dir, `${path.basename(root)}.zip`);
  await packContext(await listContext(root, memoryOutput()), file, { pool });
  return fs.readFileSync(file);
}

async function objectBytes(key: string): Promise<Buffer> {
  const r = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

const text = (n: number) => Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(Math.ceil(n / 44)).slice(0, n));

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'upload-'));
  pool = new FilePool(2);
  s3rver = await startS3rver(BUCKET);
  // Only the standard endpoint variable, no forcePathStyle: the SDK addresses IP endpoints path-style itself.
  process.env.AWS_ENDPOINT_URL_S3 = s3rver.endpoint;
  s3 = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
});

afterAll(async () => {
  if (savedEndpoint === undefined) delete process.env.AWS_ENDPOINT_URL_S3;
  else process.env.AWS_ENDPOINT_URL_S3 = savedEndpoint;
  s3?.destroy();
  await s3rver?.close();
  await pool?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('uploadContext against s3rver', () => {
  it('packs while uploading once, then skips the unchanged context without packing it', async () => {
    const root = contextDir('small', { Dockerfile: Buffer.from('FROM scratch\n'), 'app.txt': text(200_000), 'data.bin': crypto.randomBytes(100_000) });
    const context = await named(root);
    const out = memoryOutput();
    const first = await uploadContext(s3, context, BUCKET, 'ci/contexts', out);
    const expected = await archiveBytes(root);
    expect(first).toEqual({ bucket: BUCKET, key: `ci/contexts/${context.digest}.zip`, uploaded: true, size: expected.length });
    expect(context.packed).toBe(1);
    expect(s3rver.events.filter((e) => e.key === first.key).map((e) => e.eventName)).toEqual(['ObjectCreated:Put']);
    expect((await objectBytes(first.key)).equals(expected)).toBe(true);
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: first.key }));
    expect(head.ContentType).toBe('application/zip');
    expect(head.Metadata).toEqual({ 'context-sha256': context.digest });
    expect(out.lines[0]).toBe(`Build context: 3 files, sha256 ${context.digest}`);
    expect(out.lines[1]).toMatch(new RegExp(`^Packed and uploaded ${humanSize(expected.length)} to s3://${BUCKET}/ci/contexts/${context.digest}.zip in [\\d.]+ s \\([\\d.]+ MB/s\\)\\.$`));

    const stored = s3rver.events.length;
    const again = await named(root);
    const output = memoryOutput();
    const second = await uploadContext(s3, again, BUCKET, 'ci/contexts', output);
    expect(second).toEqual({ ...first, uploaded: false });
    expect(again.packed).toBe(0);
    expect(s3rver.events.length).toBe(stored);
    expect(output.lines.join('\n')).toContain('Unchanged context, upload skipped');

    fs.writeFileSync(path.join(root, 'app.txt'), Buffer.concat([text(199_999), Buffer.from('!')]));
    const changed = await named(root);
    expect(changed.digest).not.toBe(context.digest);
    expect((await uploadContext(s3, changed, BUCKET, 'ci/contexts', memoryOutput())).uploaded).toBe(true);
  });

  it('uploads a large archive in parts while packing it', async () => {
    const root = contextDir('large', { 'a.bin': crypto.randomBytes(12 * 1024 * 1024), 'b.txt': text(3_000_000), 'c.bin': crypto.randomBytes(9 * 1024 * 1024) });
    const result = await uploadContext(s3, await named(root), BUCKET, '', memoryOutput());
    // s3rver reports CompleteMultipartUpload as ObjectCreated:Post, a single PutObject as ObjectCreated:Put.
    expect(s3rver.events.filter((e) => e.key === result.key).map((e) => e.eventName)).toEqual(['ObjectCreated:Post']);
    expect((await objectBytes(result.key)).equals(await archiveBytes(root))).toBe(true);
  });

  it('stores nothing under the digest when a file changes during packing, and fails as a context problem', async () => {
    const root = contextDir('racy', { 'a.bin': crypto.randomBytes(20 * 1024 * 1024), 'z.txt': text(100_000) });
    const context = await named(root);
    fs.writeFileSync(path.join(root, 'z.txt'), Buffer.concat([text(99_999), Buffer.from('!')])); // same size
    const error = await uploadContext(s3, context, BUCKET, 'racy', memoryOutput()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ContextError);
    expect((error as Error).message).toMatch(/z\.txt changed while/);
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: contextKey('racy', context.digest) })).catch((e: unknown) => e);
    expect((head as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode).toBe(404);
  });

  it('names the step and explains a missing bucket', async () => {
    const context = await named(contextDir('orphan', { Dockerfile: Buffer.from('FROM scratch\n') }));
    const error = await uploadContext(s3, context, 'no-such-bucket', 'contexts', memoryOutput()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsStepError);
    expect((error as AwsStepError).step).toBe(`Uploading the build context to s3://no-such-bucket/contexts/${context.digest}.zip`);
    expect((error as AwsStepError).hint).toContain('Bucket no-such-bucket does not exist');
  });
});

describe('uploadContext with refused access', () => {
  it('uploads when HeadObject is forbidden and explains a refused PutObject', async () => {
    const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const mock = mockClient(client);
    const refused = (name: string) =>
      new S3ServiceException({ name, $fault: 'client', $metadata: { httpStatusCode: 403 }, message: 'denied' });
    mock.on(HeadObjectCommand).rejects(refused('Forbidden'));
    mock.on(PutObjectCommand).rejects(refused('AccessDenied'));
    const out = memoryOutput();
    const context = await named(contextDir('denied', { Dockerfile: Buffer.from('FROM scratch\n') }));
    const error = await uploadContext(client, context, BUCKET, 'contexts', out).catch((e: unknown) => e);
    expect(out.lines).toContain('No earlier upload of this context is readable (403): uploading it.');
    expect(mock.commandCalls(PutObjectCommand)).toHaveLength(1);
    expect(error).toBeInstanceOf(AwsStepError);
    expect((error as AwsStepError).hint).toContain(`s3:PutObject`);
    expect((error as AwsStepError).hint).toContain(`arn:aws:s3:::${BUCKET}/contexts/*`);
  });
});

describe('uploadContext when the upload fails while packing', () => {
  it('stops packing, aborts the multipart upload and names the step', async () => {
    const client = new S3Client({ region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'y' } });
    const mock = mockClient(client);
    mock.on(HeadObjectCommand).rejects(new S3ServiceException({ name: 'NotFound', $fault: 'client', $metadata: { httpStatusCode: 404 }, message: '' }));
    mock.on(CreateMultipartUploadCommand).resolves({ UploadId: 'u1' });
    mock.on(UploadPartCommand).rejects(new S3ServiceException({ name: 'SlowDown', $fault: 'server', $metadata: { httpStatusCode: 503 }, message: 'slow down' }));
    mock.on(AbortMultipartUploadCommand).resolves({});
    // 40 MiB of incompressible files: more than the parts in flight and the stream's buffer hold.
    const files = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`f${i}.bin`, crypto.randomBytes(4 * 1024 * 1024)]));
    const context = await named(contextDir('failing', files));
    const error = await uploadContext(client, context, BUCKET, 'contexts', memoryOutput()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsStepError);
    expect((error as AwsStepError).step).toBe(`Uploading the build context to s3://${BUCKET}/contexts/${context.digest}.zip`);
    expect((error as Error).message).toMatch(/SlowDown/);
    expect(mock.commandCalls(AbortMultipartUploadCommand).length).toBeGreaterThan(0);
  });
});

describe('helpers', () => {
  it.each([
    [0, '0 B'],
    [999, '999 B'],
    [1500, '1.5 kB'],
    [12_345_678, '12.3 MB'],
  ])('humanSize(%i)', (n, s) => expect(humanSize(n)).toBe(s));

  it('builds keys with and without a prefix', () => {
    expect(contextKey('a/b', 'f00')).toBe('a/b/f00.zip');
    expect(contextKey('', 'f00')).toBe('f00.zip');
  });
});
