import { AwsError } from './protocol';

/**
 * CloudWatch Logs' size limits (PutLogEvents, GetLogEvents): an event's size is its message's UTF-8 bytes plus 26,
 * a GetLogEvents page holds at most 1 MB of them (and 10,000 events).
 */
export const EVENT_OVERHEAD = 26;
export const PAGE_BYTES = 1_048_576;
/**
 * The largest event CodeBuild's agent writes: 256 KiB with the overhead. CloudWatch documented 256 KB per event
 * (PutLogEvents, cloudwatch_limits_cwl.md) until April 2025, 1 MB since (InputLogEvent); a longer output line
 * is split by the agent into several events in order, the last one ending the line. AWS does not document the
 * agent's splitting: this is what we know of it (issue 21, FIELD-NOTES), and the 256 KiB cut is the older, smaller
 * limit, so the follower is tested against the most pieces a line can become.
 */
export const MAX_EVENT_BYTES = 262_144;

/** `line` (ending in a newline) as the events CodeBuild writes for it: pieces of at most MAX_EVENT_BYTES. */
export function splitLine(line: string): string[] {
  const max = MAX_EVENT_BYTES - EVENT_OVERHEAD;
  if (Buffer.byteLength(line) <= max) return [line];
  const pieces: string[] = [];
  let piece = '';
  let bytes = 0;
  // By code point, so that no piece ends inside a UTF-8 sequence.
  for (const ch of line) {
    const n = Buffer.byteLength(ch);
    if (bytes + n > max) {
      pieces.push(piece);
      piece = '';
      bytes = 0;
    }
    piece += ch;
    bytes += n;
  }
  if (piece) pieces.push(piece);
  return pieces;
}

export interface LogEvent {
  timestamp: number;
  message: string;
  ingestionTime: number;
}

/** CloudWatch Logs as far as CodeBuild writes and GetLogEvents reads it. */
export class LogsStore {
  private readonly groups = new Map<string, Map<string, LogEvent[]>>();
  /** Live Tail sessions open now (live-tail.ts), which the account's limit counts. */
  liveTailSessions = 0;

  createGroup(group: string): Map<string, LogEvent[]> {
    let streams = this.groups.get(group);
    if (!streams) this.groups.set(group, (streams = new Map()));
    return streams;
  }

  createStream(group: string, stream: string): void {
    const streams = this.createGroup(group);
    if (!streams.has(stream)) streams.set(stream, []);
  }

  /** Writes one output line (ending in a newline) as CodeBuild does: one event, or several for a long line. */
  put(group: string, stream: string, message: string, timestamp = Date.now()): void {
    this.createStream(group, stream);
    const events = this.groups.get(group)?.get(stream);
    for (const piece of splitLine(message)) events?.push({ timestamp, message: piece, ingestionTime: Date.now() });
  }

  hasGroup(group: string): boolean {
    return this.groups.has(group);
  }

  streamNames(group: string): string[] {
    return [...(this.groups.get(group)?.keys() ?? [])];
  }

  events(group: string, stream: string): LogEvent[] {
    const streams = this.groups.get(group);
    if (!streams) throw new AwsError('ResourceNotFoundException', 'The specified log group does not exist.');
    const events = streams.get(stream);
    if (!events) throw new AwsError('ResourceNotFoundException', 'The specified log stream does not exist.');
    return events;
  }
}

interface GetLogEventsInput {
  logGroupName?: string;
  logGroupIdentifier?: string;
  logStreamName?: string;
  startFromHead?: boolean;
  nextToken?: string;
  limit?: number;
  startTime?: number;
  endTime?: number;
}

// Tokens are positions in the stream: f/<n> = "from event n on", b/<n> = "events before n".
// Real tokens look alike (f/ or b/ and 56 digits) but are opaque to clients, as here.
const token = (dir: 'f' | 'b', n: number) => `${dir}/${String(n).padStart(56, '0')}`;

export function getLogEvents(store: LogsStore, input: GetLogEventsInput) {
  const group = input.logGroupName ?? input.logGroupIdentifier?.replace(/^arn:.*:log-group:/, '');
  if (!group || !input.logStreamName) {
    throw new AwsError('InvalidParameterException', 'logGroupName (or logGroupIdentifier) and logStreamName are required.');
  }
  const limit = input.limit ?? 10_000;
  if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) {
    throw new AwsError('InvalidParameterException', "1 validation error detected: Value at 'limit' failed to satisfy constraint: Member must have value between 1 and 10000");
  }
  const { startTime, endTime } = input;
  const stored = store.events(group, input.logStreamName);
  // A tail pages through the whole stream, so copy it only when a time range asks for a subset.
  const events =
    startTime === undefined && endTime === undefined
      ? stored
      : stored.filter((e) => (startTime === undefined || e.timestamp >= startTime) && (endTime === undefined || e.timestamp < endTime));

  let from: number;
  let to: number;
  if (input.nextToken !== undefined) {
    const m = /^([fb])\/(\d{56})$/.exec(input.nextToken);
    const pos = Number(m?.[2]);
    if (!m || pos > events.length) throw new AwsError('InvalidParameterException', 'The specified nextToken is invalid.');
    [from, to] = m[1] === 'f' ? [pos, Math.min(events.length, pos + limit)] : [Math.max(0, pos - limit), pos];
  } else if (input.startFromHead) {
    [from, to] = [0, Math.min(events.length, limit)];
  } else {
    [from, to] = [Math.max(0, events.length - limit), events.length];
  }
  // At most 1 MB of events a page (forward; backward pages keep their newest events).
  let bytes = 0;
  const forward = input.nextToken === undefined ? input.startFromHead === true : input.nextToken.startsWith('f');
  if (forward) {
    for (let i = from; i < to; i++) {
      bytes += Buffer.byteLength((events[i] as LogEvent).message) + EVENT_OVERHEAD;
      if (bytes > PAGE_BYTES && i > from) to = i;
    }
  } else {
    for (let i = to - 1; i >= from; i--) {
      bytes += Buffer.byteLength((events[i] as LogEvent).message) + EVENT_OVERHEAD;
      if (bytes > PAGE_BYTES && i < to - 1) from = i + 1;
    }
  }
  return {
    events: events.slice(from, to),
    nextForwardToken: token('f', to),
    nextBackwardToken: token('b', from),
  };
}
