import { createWriteStream, readFileSync } from 'node:fs';
import { chmod, mkdir, symlink } from 'node:fs/promises';
import { dirname, join, resolve, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import yauzl from 'yauzl';
import { PROXY_SOURCE_ADDRESS, type ResolvedOptions } from './options';

/** Thrown when the source cannot be fetched or unpacked (CodeBuild: CLIENT_ERROR in DOWNLOAD_SOURCE). */
export class SourceError extends Error {}

/**
 * Downloads `bucket/key` from the local S3 into `zipFile`: trusting the stack's CA when s3rver speaks TLS, and in
 * proxy-only mode from the proxy's address, which s3rver then accepts (CodeBuild reaches S3 from inside AWS).
 */
export async function downloadSource(
  { s3Endpoint, region, tls, proxyOnly }: Pick<ResolvedOptions, 's3Endpoint' | 'region' | 'tls' | 'proxyOnly'>,
  location: string,
  zipFile: string,
): Promise<void> {
  if (!s3Endpoint) throw new SourceError('CLIENT_ERROR: the fake has no s3Endpoint configured, cannot fetch S3 sources');
  const slash = location.indexOf('/');
  if (slash <= 0) throw new SourceError(`CLIENT_ERROR: source location ${location} is not <bucket>/<key>`);
  const local = proxyOnly ? { localAddress: PROXY_SOURCE_ADDRESS } : {};
  const s3 = new S3Client({
    endpoint: s3Endpoint,
    region,
    forcePathStyle: true,
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
    requestHandler: new NodeHttpHandler({ httpAgent: local, httpsAgent: { ...local, ...(tls ? { ca: readFileSync(tls.caFile) } : {}) } }),
  });
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: location.slice(0, slash), Key: location.slice(slash + 1) }));
    await pipeline(out.Body as Readable, createWriteStream(zipFile));
  } catch (e) {
    const err = e as Error;
    throw new SourceError(`CLIENT_ERROR: ${err.name}: ${err.message} for primary source and source version ${location}`);
  } finally {
    s3.destroy();
  }
}

/** Unpacks a zip keeping unix modes and symlinks (as the CodeBuild agent does for S3 sources). */
export async function extractZip(zipFile: string, dest: string): Promise<number> {
  const zip = await yauzl.openPromise(zipFile, { lazyEntries: true, strictFileNames: false });
  const root = resolve(dest);
  let count = 0;
  try {
    for await (const entry of zip.eachEntry()) {
      const target = resolve(root, entry.fileName);
      if (target !== root && !target.startsWith(root + sep)) throw new SourceError(`CLIENT_ERROR: zip entry ${entry.fileName} escapes the source directory`);
      const mode = (entry.externalFileAttributes >>> 16) & 0xffff;
      const type = mode & 0o170000;
      if (entry.fileName.endsWith('/') || type === 0o040000) {
        await mkdir(target, { recursive: true });
        if (mode & 0o777) await chmod(target, mode & 0o7777);
        continue;
      }
      await mkdir(dirname(target), { recursive: true });
      const stream = await zip.openReadStreamPromise(entry);
      if (type === 0o120000) {
        const chunks: Buffer[] = [];
        for await (const c of stream) chunks.push(c as Buffer);
        await symlink(Buffer.concat(chunks).toString('utf8'), target);
      } else {
        await pipeline(stream, createWriteStream(target));
        await chmod(target, mode & 0o7777 || 0o644);
      }
      count++;
    }
  } finally {
    zip.close();
  }
  return count;
}

export function sourceZipPath(buildDir: string): string {
  return join(buildDir, 'source.zip');
}
