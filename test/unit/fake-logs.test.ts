import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildspec, runBuild, startStack, type Stack } from './fake-support';
import { getLogEvents, LogsStore, MAX_EVENT_BYTES } from '../../stack/fake-aws/logs';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack();
});
afterAll(async () => {
  await stack?.stop();
});

describe('fake CloudWatch Logs GetLogEvents (through the SDK)', () => {
  it('answers ResourceNotFoundException for a stream that does not exist yet', async () => {
    const err = await stack.logs.send(new GetLogEventsCommand({ logGroupName: '/aws/codebuild/proj', logStreamName: 'nope' })).catch((e: Error) => e);
    expect(err).toMatchObject({ name: 'ResourceNotFoundException', message: 'The specified log group does not exist.' });
  });

  it('pages a build log forward with limit and returns the same token once drained', async () => {
    const b = await runBuild(stack, { sourceTypeOverride: 'NO_SOURCE', buildspecOverride: buildspec({ build: ['for i in 1 2 3 4 5; do echo line$i; done'] }) });
    const base = { logGroupName: b.logs?.groupName, logStreamName: b.logs?.streamName, startFromHead: true, limit: 4 };
    const seen: string[] = [];
    let token: string | undefined;
    let pages = 0;
    for (;;) {
      const page = await stack.logs.send(new GetLogEventsCommand({ ...base, ...(token ? { nextToken: token } : {}) }));
      expect(page.nextForwardToken).toMatch(/^f\/\d{56}$/);
      expect(page.nextBackwardToken).toMatch(/^b\/\d{56}$/);
      expect(page.events?.length).toBeLessThanOrEqual(4);
      seen.push(...(page.events ?? []).map((e) => e.message ?? ''));
      if (page.nextForwardToken === token) {
        expect(page.events).toEqual([]);
        break;
      }
      token = page.nextForwardToken;
      pages++;
    }
    expect(pages).toBeGreaterThan(2);
    expect(seen.filter((m) => m.startsWith('line'))).toEqual(['line1\n', 'line2\n', 'line3\n', 'line4\n', 'line5\n']);
    const tail = await stack.logs.send(new GetLogEventsCommand({ ...base, startFromHead: false, limit: 2 }));
    expect(tail.events?.map((e) => e.message)).toEqual(seen.slice(-2));
  });

  it('rejects a malformed token with InvalidParameterException', async () => {
    const client = new CloudWatchLogsClient({ credentials: { accessKeyId: 'AKIAX', secretAccessKey: 'x' } });
    const b = await runBuild(stack, { sourceTypeOverride: 'NO_SOURCE', buildspecOverride: buildspec({ build: ['true'] }) });
    const err = await client.send(new GetLogEventsCommand({ logGroupName: b.logs?.groupName, logStreamName: b.logs?.streamName, nextToken: 'garbage' })).catch((e: Error) => e);
    expect(err).toMatchObject({ name: 'InvalidParameterException' });
  });
});

describe('LogsStore tokens', () => {
  it('moves backward from a backward token and sees events appended after a drained forward token', () => {
    const store = new LogsStore();
    for (const m of ['a', 'b', 'c', 'd']) store.put('g', 's', m, 1);
    const head = getLogEvents(store, { logGroupName: 'g', logStreamName: 's', startFromHead: false, limit: 2 });
    expect(head.events.map((e) => e.message)).toEqual(['c', 'd']);
    const back = getLogEvents(store, { logGroupName: 'g', logStreamName: 's', nextToken: head.nextBackwardToken });
    expect(back.events.map((e) => e.message)).toEqual(['a', 'b']);
    const drained = getLogEvents(store, { logGroupName: 'g', logStreamName: 's', nextToken: head.nextForwardToken });
    expect(drained.events).toEqual([]);
    expect(drained.nextForwardToken).toBe(head.nextForwardToken);
    store.put('g', 's', 'e', 2);
    expect(getLogEvents(store, { logGroupName: 'g', logStreamName: 's', nextToken: drained.nextForwardToken }).events.map((e) => e.message)).toEqual(['e']);
  });

  it('writes a line longer than an event as pieces of at most 256 KiB, and pages at most 1 MB of events', () => {
    const store = new LogsStore();
    const line = `${'é'.repeat(300_000)}\n`;
    store.put('g', 's', line, 1);
    const pieces = store.events('g', 's').map((e) => e.message);
    expect(pieces.join('')).toBe(line);
    expect(pieces.length).toBe(Math.ceil(Buffer.byteLength(line) / (MAX_EVENT_BYTES - 26)));
    expect(pieces.every((p) => Buffer.byteLength(p) + 26 <= MAX_EVENT_BYTES)).toBe(true);
    for (let i = 0; i < 8; i++) store.put('g', 's', `${'y'.repeat(200_000)}\n`, 2);
    const seen: string[] = [];
    let token: string | undefined;
    for (;;) {
      const page = getLogEvents(store, { logGroupName: 'g', logStreamName: 's', startFromHead: true, ...(token && { nextToken: token }) });
      expect(page.events.reduce((n, e) => n + Buffer.byteLength(e.message) + 26, 0)).toBeLessThanOrEqual(1_048_576);
      seen.push(...page.events.map((e) => e.message));
      if (page.nextForwardToken === token) break;
      token = page.nextForwardToken;
    }
    expect(seen).toEqual(store.events('g', 's').map((e) => e.message));
  });
});
