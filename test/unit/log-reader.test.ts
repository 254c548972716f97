import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { LogReader } from '../../src/follow/log-reader';
import { fakeLogStream, type LogLine } from '../helpers/codebuild-timeline';

const logsMock = mockClient(CloudWatchLogsClient);
afterEach(() => logsMock.reset());
// The mock replaces send on the class: later files in this worker (isolate: false) use real clients.
afterAll(() => logsMock.restore());

const stream = { group: '/aws/codebuild/shared-builder', name: 'stream-1' };
const lines: LogLine[] = Array.from({ length: 7 }, (_, i) => ({ at: i * 100, message: `line ${i}`, visible: 0 }));

function reader(opts: { emptyAt?: number[]; createdAt?: number; pageSize?: number } = {}) {
  const clock = { elapsed: 1_000 };
  const fake = fakeLogStream(lines, () => clock.elapsed, { createdAt: opts.createdAt ?? 0, emptyAt: opts.emptyAt ?? [], pageSize: opts.pageSize ?? 3 });
  logsMock.on(GetLogEventsCommand).callsFake(fake.handler);
  return { r: new LogReader(new CloudWatchLogsClient({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }), stream), fake, clock };
}

describe('LogReader', () => {
  it('stops at a page that is not full, without asking for the empty page that would confirm the end', async () => {
    const { r, fake } = reader({ pageSize: 10 });
    const first = await r.read({ drain: false, callMs: 10_000 });
    expect(first.events.map((e) => e.message)).toEqual(lines.map((l) => `${l.message}\n`));
    expect(first.calls).toBe(1);
    const again = await r.read({ drain: false, callMs: 10_000 });
    expect(again).toEqual({ events: [], calls: 1, atEnd: true });
    expect(fake.requests.map((q) => q.nextToken)).toEqual([undefined, 'f/7']);
    expect(fake.requests.every((q) => q.startFromHead === true && q.logGroupName === stream.group && q.logStreamName === stream.name)).toBe(true);
  });

  it('reads on through full pages, and through empty pages that bring a new token', async () => {
    const { r } = reader({ pageSize: 3, emptyAt: [3] });
    // The fake's pages of 3 count as "not full" for the real 10,000-event limit, so one read takes one page...
    expect((await r.read({ drain: false, callMs: 10_000 })).events).toHaveLength(3);
    // ...and an empty page with a new token is not the end: the same read continues.
    const next = await r.read({ drain: false, callMs: 10_000 });
    expect(next.events.map((e) => e.message)).toEqual(['line 3\n', 'line 4\n', 'line 5\n']);
    expect(next.calls).toBe(2);
  });

  it('drains a finished stream until the forward token stops changing', async () => {
    const { r } = reader({ pageSize: 3, emptyAt: [0, 0, 6] });
    const all = await r.read({ drain: true, maxPages: Infinity, callMs: 10_000 });
    expect(all.events.map((e) => e.message)).toEqual(lines.map((l) => `${l.message}\n`));
    // 2 empty pages, 3 pages of lines (one after an empty page), and the confirming page.
    expect(all.calls).toBe(7);
  });

  it('treats a stream that does not exist yet as empty, and notes a denied read once', async () => {
    const { r, clock } = reader({ createdAt: 5_000 });
    expect(await r.read({ drain: false, callMs: 10_000 })).toEqual({ events: [], calls: 1, atEnd: true });
    clock.elapsed = 6_000;
    expect((await r.read({ drain: false, callMs: 10_000 })).events).toHaveLength(3);

    logsMock.reset();
    logsMock.on(GetLogEventsCommand).rejects(Object.assign(new Error('not allowed'), { name: 'AccessDeniedException' }));
    const denied = new LogReader(new CloudWatchLogsClient({ region: 'us-east-1' }), stream);
    expect(await denied.read({ drain: false, callMs: 10_000 })).toEqual({ events: [], calls: 1, atEnd: true });
    expect(denied.denied).toBe(true);
    expect(await denied.read({ drain: true, callMs: 10_000 })).toEqual({ events: [], calls: 0, atEnd: true });
  });

  it('hands each page over as it arrives: a later page that fails loses none of the earlier ones', async () => {
    const { fake } = reader({ pageSize: 3 });
    let page = 0;
    logsMock.reset();
    logsMock.on(GetLogEventsCommand).callsFake((input) => {
      if (++page === 3) throw Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' });
      return fake.handler(input);
    });
    const r = new LogReader(new CloudWatchLogsClient({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }), stream);
    const got: string[] = [];
    const onPage = (events: { message: string }[]) => got.push(...events.map((e) => e.message));
    await expect(r.read({ drain: true, maxPages: Infinity, callMs: 10_000, onPage })).rejects.toThrow('Rate exceeded');
    expect(got).toEqual(['line 0\n', 'line 1\n', 'line 2\n', 'line 3\n', 'line 4\n', 'line 5\n']);
    // The next read goes on from there: every line once.
    const rest = await r.read({ drain: true, maxPages: Infinity, callMs: 10_000, onPage });
    expect(rest.events).toEqual([]);
    expect(got).toEqual(lines.map((l) => `${l.message}\n`));
  });

  it('says whether a read reached the current end or stopped at its page limit', async () => {
    const { r } = reader({ pageSize: 10_000 });
    const limited = await new LogReader(new CloudWatchLogsClient({ region: 'us-east-1', credentials: { accessKeyId: 'a', secretAccessKey: 'b' } }), stream).read({ drain: false, maxPages: 0, callMs: 10_000 });
    expect(limited.atEnd).toBe(false);
    expect((await r.read({ drain: false, callMs: 10_000 })).atEnd).toBe(true);
  });

  it('lets other failures reach the follow loop', async () => {
    logsMock.on(GetLogEventsCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException' }));
    await expect(new LogReader(new CloudWatchLogsClient({ region: 'us-east-1' }), stream).read({ drain: false, callMs: 10_000 })).rejects.toThrow('Rate exceeded');
  });
});
