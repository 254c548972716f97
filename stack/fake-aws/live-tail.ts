import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { EventStreamCodec } from '@smithy/core/event-streams';
import type { LogsStore } from './logs';
import { FakeLimits } from './limits';
import { AwsError } from './protocol';

/**
 * CloudWatch Logs StartLiveTail: an HTTP response that stays open and carries AWS event-stream messages
 * (application/vnd.amazon.eventstream: binary frames with CRC32 checksums, encoded here by the SDK's own
 * codec). First a `sessionStart` event, then a `sessionUpdate` every second with the events ingested since
 * the last one (none before the session started), at most 500 a second: above that AWS samples them and
 * says so in `sessionMetadata.sampled`. The session ends after `maxMs` (AWS: 3 hours) with a
 * SessionTimeoutException message, or when the client closes the connection. Over the account's concurrent
 * sessions, StartLiveTail answers LimitExceededException.
 */
export interface LiveTailOptions {
  intervalMs?: number;
  maxMs?: number;
  /** Events a second before sampling (AWS: 500). */
  maxPerUpdate?: number;
}

interface Input {
  logGroupIdentifiers?: unknown;
  logStreamNames?: unknown;
}

const codec = new EventStreamCodec((b) => Buffer.from(b).toString('utf8'), (s) => Buffer.from(s, 'utf8'));

function encode(kind: 'event' | 'exception', type: string, body: unknown): Uint8Array {
  const typeHeader = kind === 'event' ? ':event-type' : ':exception-type';
  return codec.encode({
    headers: {
      ':message-type': { type: 'string', value: kind },
      [typeHeader]: { type: 'string', value: type },
      ':content-type': { type: 'string', value: 'application/json' },
    },
    body: Buffer.from(JSON.stringify(body), 'utf8'),
  });
}

/** What the stream sends, as it sends it (the fake checks it against AWS's model). */
export type OnMessage = (kind: 'event' | 'exception', type: string, body: unknown) => void;

/** Validates the request (throwing AwsError before anything is sent), then streams the session. */
export function startLiveTail(store: LogsStore, input: Input, res: ServerResponse, opts: LiveTailOptions = {}, onMessage: OnMessage = () => {}): void {
  const groups = input.logGroupIdentifiers;
  if (!Array.isArray(groups) || groups.length < 1 || groups.length > 10 || !groups.every((g) => typeof g === 'string' && g !== '')) {
    throw new AwsError('InvalidParameterException', 'logGroupIdentifiers must list 1 to 10 log group ARNs.');
  }
  const names = input.logStreamNames;
  if (names !== undefined && (!Array.isArray(names) || names.length < 1 || names.length > 100 || !names.every((n) => typeof n === 'string'))) {
    throw new AwsError('InvalidParameterException', 'logStreamNames must list 1 to 100 stream names.');
  }
  const watched = (groups as string[]).map((id) => ({ id, group: id.replace(/^arn:[^:]+:logs:[^:]*:[^:]*:log-group:/, '').replace(/:\*$/, '') }));
  for (const w of watched) {
    if (!store.hasGroup(w.group)) throw new AwsError('ResourceNotFoundException', `The specified log group does not exist: ${w.id}`);
  }
  if (store.liveTailSessions >= FakeLimits.liveTailSessions) {
    // AWS's wording for this quota is not published.
    throw new AwsError('LimitExceededException', `You have reached the maximum of ${FakeLimits.liveTailSessions} concurrent Live Tail sessions.`);
  }
  // Only events ingested after the session started.
  const seen = new Map<string, number>();
  const key = (group: string, stream: string) => `${group}\u0000${stream}`;
  const streams = () => watched.flatMap((w) => store.streamNames(w.group)
    .filter((s) => names === undefined || (names as string[]).includes(s)).map((s) => ({ ...w, stream: s })));
  for (const s of streams()) seen.set(key(s.group, s.stream), store.events(s.group, s.stream).length);

  const frame = (kind: 'event' | 'exception', type: string, body: unknown) => {
    onMessage(kind, type, body);
    return encode(kind, type, body);
  };
  const sessionId = randomUUID();
  res.writeHead(200, { 'content-type': 'application/vnd.amazon.eventstream', 'x-amzn-requestid': randomUUID() });
  res.write(frame('event', 'sessionStart', {
    requestId: randomUUID(), sessionId, logGroupIdentifiers: groups, ...(names !== undefined && { logStreamNames: names }),
  }));
  const max = opts.maxPerUpdate ?? 500;
  const started = Date.now();
  const update = () => {
    const results = [];
    for (const s of streams()) {
      const events = store.events(s.group, s.stream);
      const from = seen.get(key(s.group, s.stream)) ?? 0;
      seen.set(key(s.group, s.stream), events.length);
      for (const e of events.slice(from)) {
        results.push({ logStreamName: s.stream, logGroupIdentifier: s.id, message: e.message, timestamp: e.timestamp, ingestionTime: e.ingestionTime });
      }
    }
    const sampled = results.length > max;
    const kept = sampled ? results.filter((_, i) => i % Math.ceil(results.length / max) === 0) : results;
    res.write(frame('event', 'sessionUpdate', { sessionMetadata: { sampled }, sessionResults: kept }));
    if (Date.now() - started >= (opts.maxMs ?? 3 * 3600_000)) {
      res.end(frame('exception', 'SessionTimeoutException', { message: 'Session timed out after 3 hours.' }));
      stop();
    }
  };
  store.liveTailSessions += 1;
  const timer = setInterval(update, opts.intervalMs ?? 1_000);
  let open = true;
  const stop = () => {
    clearInterval(timer);
    if (open) store.liveTailSessions -= 1;
    open = false;
  };
  res.on('close', stop);
}
