/**
 * The build log as the fake stores it, and the comparison of a job log with it, without vitest: bench/ uses them too
 * (build-log.ts holds the assertions the e2e files make with them).
 */
import { stripVTControlCharacters } from 'node:util';
import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { fromWebToken } from '@aws-sdk/credential-providers';
import type { Stack } from '../../stack/stack';

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

/**
 * The non-blank build-log lines the job log does not show as often as the build log holds them (once, mostly), each
 * as `"line": X in the job log, Y in the build log`; none when the job log holds the whole build log once.
 */
export function linesNotOnce(jobLines: string[], buildLines: string[]): string[] {
  const count = (lines: string[]) => {
    const counts = new Map<string, number>();
    for (const l of lines) if (l.trim() !== '') counts.set(l, (counts.get(l) ?? 0) + 1);
    return counts;
  };
  const inJob = count(jobLines);
  return [...count(buildLines)].filter(([line, n]) => inJob.get(line) !== n)
    .map(([line, n]) => `${JSON.stringify(line)}: ${inJob.get(line) ?? 0} in the job log, ${n} in the build log`);
}
