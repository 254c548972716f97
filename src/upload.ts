/**
 * Uploads the packed context to S3 under its content hash, so an unchanged context is never sent twice.
 */
import fs from 'node:fs';
import { HeadObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { Upload as MultipartUpload } from '@aws-sdk/lib-storage';
import type { Output } from './console';
import { awsStep } from './errors';
import type { Archive } from './zip';

export interface Upload {
  bucket: string;
  key: string;
  /** False when an object with the same content hash was already there. */
  uploaded: boolean;
}

const MIN_PART_SIZE = 8 * 1024 * 1024;
const MAX_PARTS = 10_000;
const QUEUE_SIZE = 4;

export function contextKey(prefix: string, sha256: string): string {
  return prefix ? `${prefix}/${sha256}.zip` : `${sha256}.zip`;
}

export async function uploadContext(s3: S3Client, archive: Archive, bucket: string, prefix: string, out: Output): Promise<Upload> {
  const key = contextKey(prefix, archive.sha256);
  const url = `s3://${bucket}/${key}`;
  out.info(`Build context: ${archive.fileCount} files, ${humanSize(archive.size)}, sha256 ${archive.sha256}`);
  return awsStep(
    `Uploading the build context to ${url}`,
    async () => {
      if (await isUploaded(s3, archive, bucket, key, out)) {
        out.info(`Unchanged context, upload skipped: ${url} already exists.`);
        return { bucket, key, uploaded: false };
      }
      const started = performance.now();
      await new MultipartUpload({
        client: s3,
        params: {
          Bucket: bucket,
          Key: key,
          Body: fs.createReadStream(archive.file),
          ContentType: 'application/zip',
          ChecksumAlgorithm: 'SHA256',
          Metadata: { sha256: archive.sha256 },
        },
        // Objects above one part go up in parallel parts; the part size grows to stay within S3's 10,000 parts.
        partSize: Math.max(MIN_PART_SIZE, Math.ceil(archive.size / MAX_PARTS)),
        queueSize: QUEUE_SIZE,
      }).done();
      const seconds = Math.max((performance.now() - started) / 1000, 0.001);
      out.info(`Uploaded ${humanSize(archive.size)} to ${url} in ${seconds.toFixed(1)} s (${(archive.size / 1e6 / seconds).toFixed(1)} MB/s).`);
      return { bucket, key, uploaded: true };
    },
    (e) => uploadHint(e, bucket, key),
  );
}

/** Whether the content-addressed object is already in the bucket (same size). */
async function isUploaded(s3: S3Client, archive: Archive, bucket: string, key: string, out: Output): Promise<boolean> {
  try {
    const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return head.ContentLength === archive.size;
  } catch (e) {
    const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
    if (status === 404) return false;
    // The least-privilege role (infra/) has no s3:ListBucket, so S3 answers 403, not 404, for a context
    // never uploaded. If the role lacks s3:PutObject too, the upload below fails with its own hint.
    if (status === 403) {
      out.info('No earlier upload of this context is readable (403): uploading it.');
      return false;
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
