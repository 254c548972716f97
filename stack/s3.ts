import fs from 'node:fs';
import path from 'node:path';
import { daemonScript } from './daemon-script';
import { freePort, readJson, startDaemon, waitFor, type Daemon } from './process';
import { REPO_ROOT } from './paths';
import type { Certificates } from './tls';

export interface S3 {
  daemon: Daemon;
  /** `http(s)://127.0.0.1:<port>`; path-style addressing (the SDK uses it for IP endpoints). */
  endpoint: string;
}

/** A port for s3rver, picked up front so the fake can be configured while s3rver starts. */
export async function s3Endpoint(scheme: 'http' | 'https' = 'http'): Promise<string> {
  return `${scheme}://127.0.0.1:${await freePort()}`;
}

/**
 * Starts s3rver (see s3-server.ts) on `endpoint` with `bucket` created, data under `<dir>/s3`; over TLS with
 * `tls`, and refusing requests that did not come through the stack's proxy with `proxyOnly`.
 */
export async function startS3(dir: string, bucket: string, endpoint: string, opts: { tls?: Certificates | undefined; proxyOnly?: boolean } = {}): Promise<S3> {
  const readyFile = path.join(dir, 's3', 'ready.json');
  fs.mkdirSync(path.dirname(readyFile), { recursive: true });
  fs.rmSync(readyFile, { force: true });
  const args = [daemonScript(path.join(REPO_ROOT, 'stack', 's3-server.ts')), path.join(dir, 's3', 'data'), bucket, new URL(endpoint).port, readyFile];
  if (opts.tls) args.push('--key', opts.tls.keyFile, '--cert', opts.tls.certFile);
  if (opts.proxyOnly) args.push('--proxy-only');
  const daemon = startDaemon(dir, 's3rver', process.execPath, args, { cwd: REPO_ROOT });
  await waitFor(daemon, `s3rver on ${endpoint}`, async () => readJson<{ port: number }>(readyFile)?.port);
  return { daemon, endpoint };
}
