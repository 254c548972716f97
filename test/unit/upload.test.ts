import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AwsStepError } from '../../src/errors';
import { contextKey, humanSize, uploadContext } from '../../src/upload';
import type { Archive } from '../../src/zip';
import { memoryOutput } from '../helpers/output';
import { startS3rver, type S3rverInstance } from '../helpers/s3rver-instance';

const BUCKET = 'codebuild-image-000000000000-us-east-1';
let s3rver: S3rverInstance;
let s3: S3Client;
let dir: string;
const savedEndpoint = process.env.AWS_ENDPOINT_URL_S3;

function archive(name: string, size: number): Archive {
  const file = path.join(dir, name);
  const data = crypto.randomBytes(size);
  fs.writeFileSync(file, data);
  return { file, size, fileCount: 3, entryCount: 4, sha256: crypto.createHash('sha256').update(data).digest('hex') };
}

async function objectBytes(key: string): Promise<Buffer> {
  const r = await s3.send(new GetObjectCommand({ Bucket: BUCKET, Key: key }));
  return Buffer.from(await r.Body!.transformToByteArray());
}

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'upload-'));
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
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('uploadContext against s3rver', () => {
  it('uploads once, then skips the unchanged context', async () => {
    const a = archive('small.zip', 300_000);
    const out = memoryOutput();
    const first = await uploadContext(s3, a, BUCKET, 'ci/contexts', out);
    expect(first).toEqual({ bucket: BUCKET, key: `ci/contexts/${a.sha256}.zip`, uploaded: true });
    expect(s3rver.events.filter((e) => e.key === first.key).map((e) => e.eventName)).toEqual(['ObjectCreated:Put']);
    expect((await objectBytes(first.key)).equals(fs.readFileSync(a.file))).toBe(true);
    const head = await s3.send(new HeadObjectCommand({ Bucket: BUCKET, Key: first.key }));
    expect(head.ContentType).toBe('application/zip');
    expect(head.Metadata).toEqual({ sha256: a.sha256 });
    expect(out.lines[0]).toBe(`Build context: 3 files, 300.0 kB, sha256 ${a.sha256}`);
    expect(out.lines[1]).toMatch(new RegExp(`^Uploaded 300.0 kB to s3://${BUCKET}/ci/contexts/${a.sha256}.zip in [\\d.]+ s \\([\\d.]+ MB/s\\)\\.$`));

    const stored = s3rver.events.length;
    const again = memoryOutput();
    const second = await uploadContext(s3, a, BUCKET, 'ci/contexts', again);
    expect(second).toEqual({ ...first, uploaded: false });
    expect(s3rver.events.length).toBe(stored);
    expect(again.lines.join('\n')).toContain('Unchanged context, upload skipped');
  });

  it('uploads a large archive in parts', async () => {
    const a = archive('large.zip', 20 * 1024 * 1024);
    const result = await uploadContext(s3, a, BUCKET, '', memoryOutput());
    expect(result.key).toBe(`${a.sha256}.zip`);
    // s3rver reports CompleteMultipartUpload as ObjectCreated:Post, a single PutObject as ObjectCreated:Put.
    expect(s3rver.events.filter((e) => e.key === result.key).map((e) => e.eventName)).toEqual(['ObjectCreated:Post']);
    expect((await objectBytes(result.key)).equals(fs.readFileSync(a.file))).toBe(true);
  });

  it('names the step and explains a missing bucket', async () => {
    const a = archive('orphan.zip', 1000);
    const error = await uploadContext(s3, a, 'no-such-bucket', 'contexts', memoryOutput()).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsStepError);
    expect((error as AwsStepError).step).toBe(`Uploading the build context to s3://no-such-bucket/contexts/${a.sha256}.zip`);
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
    const error = await uploadContext(client, archive('denied.zip', 100), BUCKET, 'contexts', out).catch((e: unknown) => e);
    expect(out.lines).toContain('No earlier upload of this context is readable (403): uploading it.');
    expect(mock.commandCalls(PutObjectCommand)).toHaveLength(1);
    expect((error as AwsStepError).hint).toContain(`s3:PutObject`);
    expect((error as AwsStepError).hint).toContain(`arn:aws:s3:::${BUCKET}/contexts/*`);
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
