/** The build log as the fake stores it, and checks that a job log shows each of its lines once and in order. */
import { randomUUID } from 'node:crypto';
import { stripVTControlCharacters } from 'node:util';
import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { fromWebToken } from '@aws-sdk/credential-providers';
import { expect } from 'vitest';
import type { Stack } from '../../stack/stack';

/** The lines the numbered Dockerfile prints. */
export const NUMBERED = Array.from({ length: 50 }, (_, i) => `line-${String(i + 1).padStart(3, '0')}`);

/**
 * The job's Dockerfile prints 50 numbered lines, which BuildKit's plain progress shows as `#N 0.123 line-001`,
 * after `sleep` seconds and `every` seconds apart. The nonce keeps the layer cache from replaying the step silently
 * (the sleeps are in that step too); the step's own text (shown in `#N [2/2] RUN ...`) holds no `line-NNN`.
 */
export function numberedDockerfile(opts: { sleep?: number | undefined; every?: number | undefined } = {}): string {
  const pause = (s: number | undefined) => (s ? `sleep ${s} && ` : '');
  return [
    'ARG BASE_IMAGE=busybox:stable',
    'FROM ${BASE_IMAGE}',
    `RUN echo "nonce ${randomUUID()}" && ${pause(opts.sleep)}i=1 && while [ $i -le 50 ]; do printf 'line-%03d\\n' $i; ${pause(opts.every)}i=$((i+1)); done`,
    '',
  ].join('\n');
}

/** The build's CloudWatch log as the fake stores it, read with the real SDK and credentials from the fake STS. */
export async function storedLog(stack: Stack, buildId: string): Promise<string[]> {
  const credentials = fromWebToken({
    roleArn: stack.roleArn,
    roleSessionName: 'faults-test',
    webIdentityToken: await stack.signToken(),
    clientConfig: { region: stack.region, endpoint: stack.fakeUrl },
  });
  const logs = new CloudWatchLogsClient({ region: stack.region, endpoint: stack.fakeUrl, credentials });
  const streamName = buildId.slice(buildId.indexOf(':') + 1);
  const lines: string[] = [];
  let token: string | undefined;
  for (;;) {
    const res = await logs.send(new GetLogEventsCommand({
      logGroupName: stack.logGroupName, logStreamName: streamName, startFromHead: true,
      ...(token && { nextToken: token }),
    }));
    // The program prints a multi-line event as its lines, without the trailing newline.
    // Compared with the job log as a reader sees it: colours (BuildKit colours its warnings) stripped.
    for (const e of res.events ?? []) lines.push(...stripVTControlCharacters(e.message ?? '').replace(/\r?\n$/, '').split('\n'));
    if (!res.nextForwardToken || res.nextForwardToken === token) break;
    token = res.nextForwardToken;
  }
  logs.destroy();
  return lines;
}

/** The Dockerfile's numbered lines, out of BuildKit's `#N <seconds> <line>` progress lines. */
export const numbered = (lines: string[]) => lines.flatMap((l) => /^#\d+ \d+\.\d+ (line-\d{3})$/.exec(l)?.[1] ?? []);

/** Every stored line appears in the job log as often as in the build log (once, for non-blank lines); in order unless told. */
export function expectBuildLogOnce(jobLines: string[], buildLines: string[], opts = { inOrder: true }): void {
  // On failure, the job's own lines about its log (gaps, Live Tail, polling) say what happened.
  const notes = jobLines.filter((l) => /WARNING|Live Tail|polling|earlier lines|missing/.test(l)).join('\n');
  const count = (lines: string[]) => {
    const counts = new Map<string, number>();
    for (const l of lines) if (l.trim() !== '') counts.set(l, (counts.get(l) ?? 0) + 1);
    return counts;
  };
  const inJob = count(jobLines);
  const wrong = [...count(buildLines)].filter(([line, n]) => inJob.get(line) !== n)
    .map(([line, n]) => `${JSON.stringify(line)}: ${inJob.get(line) ?? 0} in the job log, ${n} in the build log`);
  expect(wrong, notes).toEqual([]);
  if (!opts.inOrder) return;

  let next = 0;
  for (const l of jobLines) if (next < buildLines.length && l === buildLines[next]) next++;
  expect(buildLines.slice(next, next + 3), 'first build-log line missing from the job log in order').toEqual([]);
}
