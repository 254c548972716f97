/**
 * One follower in its own process, so its peak RSS is its own (bench/loud.ts bundles it and runs it).
 * Usage: loud-child.js <follow|idle> <logFile>, with StartBuild's answer as JSON on stdin and the fake's endpoints in
 * AWS_ENDPOINT_URL_*. `idle` loads the same code and clients and follows nothing: the reference for peak RSS.
 * Prints one JSON line: peak RSS, every request's time, and what the job log showed (counted, not kept).
 */
import { readFileSync } from 'node:fs';
import type { Build } from '@aws-sdk/client-codebuild';
import { createClients } from '../src/aws/clients';
import { followBuild } from '../src/follow/follower';
import { peakRssKB } from './peak-rss';
import type { Output } from '../src/shared/console';

const CREDENTIALS = { accessKeyId: 'AKIABENCHLOUD0000000', secretAccessKey: 'not-checked' };

async function main(): Promise<void> {
  const [mode, logFile] = process.argv.slice(2);
  const started = JSON.parse(readFileSync(0, 'utf8')) as Build;
  const clients = createClients('us-east-1', async () => CREDENTIALS);
  const calls: number[] = [];
  for (const client of [clients.codebuild, clients.logs, clients.liveTail]) {
    // Below the retry middleware: every attempt is a request against the account's quota.
    client.middlewareStack.add((next) => (args) => {
      calls.push(Date.now());
      return next(args);
    }, { step: 'deserialize', name: 'benchCountRequests' });
  }
  // Only what the figures need, so that keeping it does not weigh on the RSS measured: the build's numbered lines
  // (how many, whether each came once and in order, when the first and last came), the 1 MiB line's pieces, the
  // cap's line, and the job log's bytes.
  const seen = { lines: 0, inOrder: true, firstAt: 0, lastAt: 0, bytes: 0, capAt: 0, linesAfterCap: 0, bigBytes: 0, bigWrittenAt: 0, bigShownAt: 0 };
  const record = (text: string) => {
    const now = Date.now();
    seen.bytes += Buffer.byteLength(text) + 1;
    const n = /^line (\d+) /.exec(text);
    if (n) {
      seen.inOrder &&= Number(n[1]) === seen.lines + 1;
      seen.lines++;
      seen.firstAt ||= now;
      seen.lastAt = now;
      if (seen.capAt) seen.linesAfterCap++;
    } else if (text.startsWith('xxxx')) {
      seen.bigBytes += text.length;
      seen.bigShownAt = now;
    } else if (text.startsWith('big at ')) {
      seen.bigWrittenAt = Number(text.slice(7));
    } else if (text.includes("The job log nears GitLab's 4 MiB limit")) {
      seen.capAt = now;
    }
  };
  const out: Output = { info: record, warn: record, error: record, sectionStart: (_id, title) => record(title), sectionEnd: () => record('') };
  let build: Build = started;
  if (mode === 'follow') build = await followBuild({ codebuild: clients.codebuild, logs: clients.logs, tailWith: clients.liveTail, out, ...(logFile && { logFile }) }, started);
  const returnedAt = Date.now();
  process.stdout.write(`${JSON.stringify({ rssMB: peakRssKB() / 1024, calls, seen, returnedAt, status: build.buildStatus, buildPhase: build.phases?.find((p) => p.phaseType === 'BUILD') })}\n`);
  process.exit(0);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
