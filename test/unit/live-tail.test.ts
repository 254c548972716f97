// Live Tail end to end at unit scale: the fake's StartLiveTail event stream, decoded by the real SDK
// (createClients, as the program builds it), and followBuild on a running fake build.
import { rmSync } from 'node:fs';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { CodeBuildClient, StartBuildCommand } from '@aws-sdk/client-codebuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients, requestHandler, type Clients } from '../../src/aws/clients';
import { followBuild } from '../../src/follow/follower';
import { LiveTail, logGroupArn, plannedStream } from '../../src/follow/live-tail';
import { startFakeAws } from '../../stack/fake-aws/server';
import { memoryOutput } from '../helpers/output';
import { buildspec, startStack, STATIC_CREDENTIALS, waitForBuild, type Stack } from './fake-support';

let stack: Stack;
let clients: Clients;
beforeAll(async () => {
  stack = await startStack({ liveTail: { intervalMs: 200, maxPerUpdate: 50 } });
  clients = createClients('us-east-1', async () => STATIC_CREDENTIALS);
  // CodeBuild makes a project's default log group with its first build; a session needs the group.
  await start(['true']);
});
afterAll(async () => {
  clients?.logs.destroy();
  clients?.codebuild.destroy();
  await stack?.stop();
});

async function start(commands: string[]) {
  const started = await clients.codebuild.send(new StartBuildCommand({ projectName: 'proj', sourceTypeOverride: 'NO_SOURCE', buildspecOverride: buildspec({ build: commands }) }));
  return waitForBuild(clients.codebuild, started.build?.id ?? '', (b) => Boolean(b.logs?.streamName));
}

describe('Live Tail', () => {
  it('streams the lines ingested after the session started, through the SDK\'s event-stream decoding', async () => {
    const build = await start(['sleep 1', 'for i in 1 2 3; do echo tailed-$i; sleep 0.2; done']);
    const tail = await LiveTail.start(clients.logs, logGroupArn(build.logs?.cloudWatchLogsArn) ?? '', build.logs?.streamName ?? '');
    await waitForBuild(clients.codebuild, build.id ?? '');
    await new Promise((r) => setTimeout(r, 500));
    const messages = tail.take().map((e) => e.message);
    tail.stop();
    expect(messages.filter((m) => m.startsWith('tailed-'))).toEqual(['tailed-1\n', 'tailed-2\n', 'tailed-3\n']);
    // Nothing from before the session: the agent's first lines were written before it started.
    expect(messages.some((m) => m.includes('Running on CodeBuild On-demand'))).toBe(false);
    expect(tail.sampled).toBe(false);
  });

  it('says when AWS sampled the events (over the per-second maximum)', async () => {
    const build = await start(['sleep 1', 'seq 1 400']);
    const tail = await LiveTail.start(clients.logs, logGroupArn(build.logs?.cloudWatchLogsArn) ?? '', build.logs?.streamName ?? '');
    await waitForBuild(clients.codebuild, build.id ?? '');
    await new Promise((r) => setTimeout(r, 500));
    tail.stop();
    expect(tail.sampled).toBe(true);
  });

  it('follows a build with one StartLiveTail and a few reads, every line once and in order', async () => {
    const build = await start(['sleep 1', 'for i in $(seq 1 20); do echo line-$i; sleep 0.1; done']);
    const before = await stack.control.calls();
    const out = memoryOutput();
    const final = await followBuild({ codebuild: clients.codebuild, logs: clients.logs, tailWith: clients.liveTail, out }, build);
    expect(final.buildStatus).toBe('SUCCEEDED');
    expect(out.lines.filter((l) => l.startsWith('line-'))).toEqual(Array.from({ length: 20 }, (_, i) => `line-${i + 1}`));
    expect(out.lines.filter((l) => l.includes('Entering phase BUILD'))).toHaveLength(1);
    expect(out.lines.filter((l) => /polling/.test(l))).toEqual([]);
    const after = await stack.control.calls();
    expect((after.StartLiveTail ?? 0) - (before.StartLiveTail ?? 0)).toBe(1);
    // The catch-up read, and the final drain (a page and its confirmation).
    expect((after.GetLogEvents ?? 0) - (before.GetLogEvents ?? 0)).toBeLessThanOrEqual(4);
  });

  it('starts the session right after StartBuild, before the stream: with GetLogEvents throttled throughout, every line from Live Tail', async () => {
    // CodeBuild's hosts take seconds to provision; the session is there before the first line.
    await stack.control.inject({ kind: 'provisioning', operation: 'StartBuild', ms: 1_500 });
    await stack.control.inject({ kind: 'throttle', operation: 'GetLogEvents', count: 100_000 });
    try {
      const started = await clients.codebuild.send(new StartBuildCommand({ projectName: 'proj', sourceTypeOverride: 'NO_SOURCE', buildspecOverride: buildspec({ build: ['for i in $(seq 1 10); do echo line-$i; sleep 0.1; done'] }) }));
      const out = memoryOutput();
      const final = await followBuild({ codebuild: clients.codebuild, logs: clients.logs, tailWith: clients.liveTail, out }, started.build ?? {});
      expect(final.buildStatus).toBe('SUCCEEDED');
      expect(out.lines.filter((l) => l.startsWith('line-'))).toEqual(Array.from({ length: 10 }, (_, i) => `line-${i + 1}`));
      // The agent's first line too, which a session started after the stream would have missed.
      expect(out.lines.filter((l) => l.includes('Running on CodeBuild On-demand'))).toHaveLength(1);
      expect(out.lines.filter((l) => /earlier lines|polling|missing/.test(l))).toEqual([]);
    } finally {
      await stack.control.clearFaults();
    }
  });

  it('with a session that started after the stream and GetLogEvents throttled for good: one line on the gap, one on the missing lines, and it ends', async () => {
    await stack.control.inject({ kind: 'delay', operation: 'StartLiveTail', ms: 1_000, count: 1 });
    await stack.control.inject({ kind: 'throttle', operation: 'GetLogEvents', count: 100_000 });
    try {
      const started = await clients.codebuild.send(new StartBuildCommand({ projectName: 'proj', sourceTypeOverride: 'NO_SOURCE', buildspecOverride: buildspec({ build: ['sleep 2', 'for i in $(seq 1 10); do echo line-$i; sleep 0.1; done'] }) }));
      const out = memoryOutput();
      const final = await followBuild({ codebuild: clients.codebuild, logs: clients.logs, tailWith: clients.liveTail, out, gapDrainMs: 1_500 }, started.build ?? {});
      expect(final.buildStatus).toBe('SUCCEEDED');
      expect(out.lines.filter((l) => l.startsWith('line-'))).toEqual(Array.from({ length: 10 }, (_, i) => `line-${i + 1}`));
      expect(out.lines.filter((l) => l.includes('earlier lines, if any, are not read yet'))).toHaveLength(1);
      expect(out.lines.filter((l) => l.includes("The build's first lines are missing here: the final read of its log failed ("))).toHaveLength(1);
    } finally {
      await stack.control.clearFaults();
    }
  });

  it('plans the stream from StartBuild\'s answer: the LogsConfig\'s group and stream prefix, else CodeBuild\'s default group', () => {
    const arn = 'arn:aws:codebuild:eu-west-1:123456789012:build/image-builder:0b6f1f52-6f0d-4c1c-9b1e-2a3c4d5e6f70';
    expect(plannedStream({ arn, logs: { cloudWatchLogs: { status: 'ENABLED' } } })).toEqual({
      groupArn: 'arn:aws:logs:eu-west-1:123456789012:log-group:/aws/codebuild/image-builder', name: '0b6f1f52-6f0d-4c1c-9b1e-2a3c4d5e6f70',
    });
    expect(plannedStream({ arn: arn.replace('arn:aws:', 'arn:aws-cn:'), logs: { cloudWatchLogs: { status: 'ENABLED', groupName: '/codebuild-image/b', streamName: 'jobs' } } })).toEqual({
      groupArn: 'arn:aws-cn:logs:eu-west-1:123456789012:log-group:/codebuild-image/b', name: 'jobs/0b6f1f52-6f0d-4c1c-9b1e-2a3c4d5e6f70',
    });
    expect(plannedStream({ arn, logs: { cloudWatchLogs: { status: 'DISABLED' } } })).toBeUndefined();
    expect(plannedStream({ id: 'image-builder:0b6f1f52' })).toBeUndefined();
  });

  it('refuses a session over the account’s 15 at once, and follows such a build by polling, saying why', async () => {
    const first = await start(['echo first']);
    const group = logGroupArn(first.logs?.cloudWatchLogsArn) ?? '';
    // On the sessions' own client: the polling client's adaptive retry slows it after the throttling tests above.
    const open = await Promise.all(Array.from({ length: 15 }, () => LiveTail.start(clients.liveTail, group, first.logs?.streamName ?? '')));
    try {
      // The session is asked for once (Clients.liveTail makes one attempt): polling takes over at once.
      const build = await start(['sleep 3', 'echo polled-past-the-limit']);
      const out = memoryOutput();
      const before = (await stack.control.calls()).StartLiveTail ?? 0;
      const final = await followBuild({ codebuild: clients.codebuild, logs: clients.logs, tailWith: clients.liveTail, out }, build);
      expect(((await stack.control.calls()).StartLiveTail ?? 0) - before).toBe(1);
      expect(final.buildStatus).toBe('SUCCEEDED');
      expect(out.lines).toContain('polled-past-the-limit');
      expect(out.lines.filter((l) => l.includes('StartLiveTail'))).toEqual([
        "Following the log by polling: StartLiveTail failed (LimitExceededException); the account's 15 concurrent Live Tail sessions are in use (other jobs' builds, or the console).",
      ]);
    } finally {
      for (const tail of open) tail.stop();
    }
    // A closed session frees its place.
    await new Promise((r) => setTimeout(r, 200));
    const again = await LiveTail.start(clients.liveTail, group, first.logs?.streamName ?? '');
    again.stop();
  });

  it('gives up on a session whose first message does not come, and drops one that goes silent', async () => {
    // A server that takes the request and never answers, as a proxy that holds each answer until it completes.
    const held: ServerResponse[] = [];
    const silentServer = createServer((_req, res) => held.push(res));
    await new Promise<void>((resolve) => silentServer.listen(0, '127.0.0.1', resolve));
    const logs = new CloudWatchLogsClient({
      region: 'us-east-1', credentials: STATIC_CREDENTIALS, endpoint: `http://127.0.0.1:${(silentServer.address() as AddressInfo).port}`,
      disableHostPrefix: true, requestHandler: requestHandler(), maxAttempts: 1,
    });
    try {
      const err = await LiveTail.start(logs, 'arn:aws:logs:us-east-1:123456789012:log-group:g', 's', { firstMessage: 300, silence: 500 }).catch((e: unknown) => e);
      expect(err).toMatchObject({ name: 'TimeoutError' });
      expect(held.length).toBeGreaterThanOrEqual(1);
    } finally {
      logs.destroy();
      silentServer.closeAllConnections();
      silentServer.close();
    }

    // The fake's sessions send their first message at once and then nothing for a minute.
    const quiet = await startFakeAws({ workDir: stack.workDir + '-quiet', liveTail: { intervalMs: 60_000 }, phaseDelayMs: 10, projects: [{ name: 'proj' }] });
    const quietLogs = new CloudWatchLogsClient({ region: 'us-east-1', credentials: STATIC_CREDENTIALS, endpoint: quiet.url, disableHostPrefix: true });
    const quietBuilds = new CodeBuildClient({ region: 'us-east-1', credentials: STATIC_CREDENTIALS, endpoint: quiet.url });
    try {
      const started = await quietBuilds.send(new StartBuildCommand({ projectName: 'proj', sourceTypeOverride: 'NO_SOURCE', buildspecOverride: buildspec({ build: ['sleep 2'] }) }));
      const build = await waitForBuild(quietBuilds, started.build?.id ?? '', (b) => Boolean(b.logs?.streamName));
      const tail = await LiveTail.start(quietLogs, logGroupArn(build.logs?.cloudWatchLogsArn) ?? '', build.logs?.streamName ?? '', { firstMessage: 2_000, silence: 300 });
      expect(tail.ended).toBe(false);
      while (!tail.ended) await new Promise((r) => setTimeout(r, 50));
      expect(tail.reason).toBe('no update for 0.3 s');
    } finally {
      quietLogs.destroy();
      quietBuilds.destroy();
      await quiet.stop();
      rmSync(`${stack.workDir}-quiet`, { recursive: true, force: true });
    }
  });

  it('follows by polling once a session goes silent, every line once and in order', async () => {
    await withOwnFake('quiet2', { intervalMs: 60_000 }, async (c) => {
      const started = await c.codebuild.send(new StartBuildCommand({ projectName: 'proj', sourceTypeOverride: 'NO_SOURCE', buildspecOverride: buildspec({ build: ['sleep 2', 'for i in $(seq 1 10); do echo line-$i; sleep 0.2; done'] }) }));
      const out = memoryOutput();
      const final = await followBuild({ codebuild: c.codebuild, logs: c.logs, out, liveTail: { firstMessage: 2_000, silence: 500 } }, started.build ?? {});
      expect(final.buildStatus).toBe('SUCCEEDED');
      expect(out.lines.filter((l) => l.startsWith('line-'))).toEqual(Array.from({ length: 10 }, (_, i) => `line-${i + 1}`));
      expect(out.lines.filter((l) => l.includes('Live Tail'))).toEqual(['Following the log by polling from here: Live Tail ended (no update for 0.5 s).']);
    });
  });

  it('falls back to polling when the role may not use StartLiveTail', async () => {
    await withOwnFake('denied', { disabled: true }, async (c) => {
      const started = await c.codebuild.send(new StartBuildCommand({ projectName: 'proj', sourceTypeOverride: 'NO_SOURCE', buildspecOverride: buildspec({ build: ['sleep 5', 'echo polled'] }) }));
      const out = memoryOutput();
      await followBuild({ codebuild: c.codebuild, logs: c.logs, out }, started.build ?? {});
      expect(out.lines).toContain('polled');
      expect(out.lines.filter((l) => l.includes('StartLiveTail'))).toEqual([
        'Following the log by polling: StartLiveTail failed (AccessDeniedException); the role needs logs:StartLiveTail to follow it with fewer requests.',
      ]);
    });
  });
});

/**
 * Runs `use` with the program's clients pointed (by AWS_ENDPOINT_URL_*) at a fake of its own with these Live Tail
 * options, in `<workDir>-<name>`; everything is put back and removed after.
 */
async function withOwnFake(name: string, liveTail: Parameters<typeof startFakeAws>[0]['liveTail'], use: (c: Clients) => Promise<void>): Promise<void> {
  const dir = `${stack.workDir}-${name}`;
  const fake = await startFakeAws({ workDir: dir, ...(liveTail && { liveTail }), phaseDelayMs: 10, projects: [{ name: 'proj' }] });
  const saved = { logs: process.env.AWS_ENDPOINT_URL_CLOUDWATCH_LOGS, codebuild: process.env.AWS_ENDPOINT_URL_CODEBUILD };
  process.env.AWS_ENDPOINT_URL_CLOUDWATCH_LOGS = fake.url;
  process.env.AWS_ENDPOINT_URL_CODEBUILD = fake.url;
  const c = createClients('us-east-1', async () => STATIC_CREDENTIALS);
  try {
    await use(c);
  } finally {
    process.env.AWS_ENDPOINT_URL_CLOUDWATCH_LOGS = saved.logs;
    process.env.AWS_ENDPOINT_URL_CODEBUILD = saved.codebuild;
    c.logs.destroy();
    c.codebuild.destroy();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
