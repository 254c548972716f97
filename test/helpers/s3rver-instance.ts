import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

interface S3rverServer {
  run(): Promise<{ address: string; port: number }>;
  close(): Promise<void>;
  on(event: 'event', listener: (e: { Records: { eventName: string; s3: { object: { key: string } } }[] }) => void): void;
}
type S3rverClass = new (options: Record<string, unknown>) => S3rverServer;

/** An in-process s3rver on 127.0.0.1 with `bucket` created; `events` lists each stored object (ObjectCreated:*). */
export interface S3rverInstance {
  endpoint: string;
  events: { eventName: string; key: string }[];
  close(): Promise<void>;
}

export async function startS3rver(bucket: string): Promise<S3rverInstance> {
  const S3rver = createRequire(import.meta.url)('s3rver') as S3rverClass;
  const directory = fs.mkdtempSync(path.join(os.tmpdir(), 's3rver-'));
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] });
  const events: S3rverInstance['events'] = [];
  server.on('event', (e) => {
    for (const r of e.Records) events.push({ eventName: r.eventName, key: decodeURIComponent(r.s3.object.key) });
  });
  const { port } = await server.run();
  return {
    endpoint: `http://127.0.0.1:${port}`,
    events,
    close: async () => {
      await server.close();
      fs.rmSync(directory, { recursive: true, force: true });
    },
  };
}
