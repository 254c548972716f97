/**
 * Uploads the build context to S3 under its context digest (digest.ts), so an unchanged context is never sent
 * twice. The digest is known before the archive is written, so the archive streams into a multipart upload
 * while it is packed: the job waits for the longer of the two, not for both in turn.
 */
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload as MultipartUpload } from '@aws-sdk/lib-storage';
import type { Output } from '../shared/console';
import { awsStep, AwsStepError, ContextError } from '../shared/errors';
import { CALL_DEADLINE_MS } from '../shared/network';
import type { Archive, ArchiveTarget } from './zip';

export interface Upload {
  bucket: string;
  key: string;
  /** False when an object with the same context digest was already there. */
  uploaded: boolean;
  /** Archive size in bytes (the stored object's when the upload was skipped). */
  size: number;
}

/** The context to upload, named before it is packed. */
export interface ContextToUpload {
  /** The context digest: names the object. */
  digest: string;
  fileCount: number;
  /** An upper bound of the archive size, for the part size. */
  maxSize: number;
  /** Packs the archive into `target`; called only when the object is not in the bucket yet. */
  write(target: ArchiveTarget): Promise<Archive>;
  /** Says the archive is not needed (packing may have started early, see early.ts). */
  cancel(): Promise<void>;
}

const MIN_PART_SIZE = 8 * 1024 * 1024;
const MAX_PARTS = 10_000;
const QUEUE_SIZE = 4;

export function contextKey(prefix: string, digest: string): string {
  return prefix ? `${prefix}/${digest}.zip` : `${digest}.zip`;
}

export async function uploadContext(s3: S3Client, context: ContextToUpload, bucket: string, prefix: string, out: Output): Promise<Upload> {
  const key = contextKey(prefix, context.digest);
  const url = `s3://${bucket}/${key}`;
  const step = `Uploading the build context to ${url}`;
  const hint = (e: unknown) => uploadHint(e, bucket, key);
  out.info(`Build context: ${context.fileCount} files, sha256 ${context.digest}`);
  const stored = await awsStep(step, () => storedSize(s3, bucket, key, out), hint);
  if (stored !== undefined) {
    void context.cancel(); // not awaited: the batches in flight finish meanwhile
    out.info(`Unchanged context, upload skipped: ${url} already exists (${humanSize(stored)}).`);
    return { bucket, key, uploaded: false, size: stored };
  }
  const started = performance.now();
  const body = new PassThrough({ highWaterMark: MIN_PART_SIZE });
  const upload = new MultipartUpload({
    client: s3,
    params: {
      Bucket: bucket,
      Key: key,
      Body: body,
      ContentType: 'application/zip',
      ChecksumAlgorithm: 'SHA256',
      Metadata: { 'context-sha256': context.digest },
    },
    // Objects above one part go up in parallel parts; the part size grows to stay within S3's 10,000 parts.
    partSize: Math.max(MIN_PART_SIZE, Math.ceil(context.maxSize / MAX_PARTS)),
    queueSize: QUEUE_SIZE,
  });
  const uploading = upload.done();
  // A failed upload stops reading: end the stream too, so the packer's next write fails instead of waiting.
  uploading.catch((e: unknown) => body.destroy(e instanceof Error ? e : new Error(String(e))));
  let archive: Archive;
  try {
    archive = await context.write({ write: (buffers) => write(body, buffers) });
  } catch (e) {
    // Packing failed (a file changed, or the upload failed first): no object may appear under this key.
    body.destroy();
    await upload.abort().catch(() => undefined);
    const uploadError = await uploading.then(() => undefined, (u: unknown) => u);
    // A context problem is the cause even though the upload then fails too (aborted); otherwise the packer only
    // stopped because the upload failed (its write failed with that error, or an abort error on the way).
    if (e instanceof ContextError || uploadError === undefined) throw e;
    throw new AwsStepError(step, uploadError, hint(uploadError));
  }
  body.end();
  await awsStep(step, () => uploading, hint);
  const seconds = Math.max((performance.now() - started) / 1000, 0.001);
  out.info(`Packed and uploaded ${humanSize(archive.size)} to ${url} in ${seconds.toFixed(1)} s (${(archive.size / 1e6 / seconds).toFixed(1)} MB/s).`);
  return { bucket, key, uploaded: true, size: archive.size };
}

/** Copies `buffers` into the stream (the packer reuses them), which holds them until a part is full. */
async function write(body: PassThrough, buffers: Buffer[]): Promise<void> {
  if (body.errored) throw body.errored;
  if (!body.write(Buffer.concat(buffers))) await once(body, 'drain'); // rejects when the upload fails meanwhile
}

/** The size of the content-addressed object if it is already in the bucket. */
async function storedSize(s3: S3Client, bucket: string, key: string, out: Output): Promise<number | undefined> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }), { requestTimeout: CALL_DEADLINE_MS });
    return head.ContentLength ?? 0;
  } catch (e) {
    const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404) return undefined;
    // The least-privilege role (infra/) has no s3:ListBucket, so S3 answers 403, not 404, for a context
    // never uploaded. If the role lacks s3:PutObject too, the upload below fails with its own hint.
    if (status === 403) {
      out.info('No earlier upload of this context is readable (403): uploading it.');
      return undefined;
    }
    throw e;
  }
}

function uploadHint(e: unknown, bucket: string, key: string): string | undefined {
  const name = (e as { name?: unknown }).name;
  switch (name) {
    case 'AccessDenied':
    case 'Forbidden':
      return (
        `The AWS identity may not write the context: allow s3:PutObject (and s3:GetObject for the ` +
        `unchanged-context check) on arn:aws:s3:::${bucket}/${key.replace(/[^/]+$/, '*')}; with SSE-KMS also kms:GenerateDataKey.`
      );
    case 'NoSuchBucket':
      return `Bucket ${bucket} does not exist: create it (see the infra/ CloudFormation template) or set the s3_bucket input.`;
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
      return `Bucket ${bucket} is in another region than aws_region: use a bucket in the CodeBuild project's region.`;
    default:
      return undefined;
  }
}

/** Decimal units, matching the MB/s figure. */
export function humanSize(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let n = bytes;
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i++;
  }
  return i === 0 ? `${n} B` : `${n.toFixed(1)} ${units[i]}`;
}
