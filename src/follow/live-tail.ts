import { StartLiveTailCommand, type CloudWatchLogsClient, type StartLiveTailResponseStream } from '@aws-sdk/client-cloudwatch-logs';
import type { LogEvent } from './phases';

/**
 * A CloudWatch Logs Live Tail session on one log stream: one request whose answer stays open, with an
 * update every second holding the events ingested since (none from before the session started). It
 * costs one request for up to 3 hours, where polling costs one every few seconds. It needs
 * `logs:StartLiveTail`; the caller falls back to polling when starting fails, the session ends early
 * (`ended`), or AWS sampled the events (over 500 a second: `sampled`).
 */
export class LiveTail {
  private queue: LogEvent[] = [];
  ended = false;
  sampled = false;
  /** Why the session ended before it was stopped, when it did. */
  reason: string | undefined;

  private constructor(private readonly abort: AbortController) {}

  /** Starts a session; throws what StartLiveTail threw (e.g. AccessDeniedException). */
  static async start(logs: CloudWatchLogsClient, groupArn: string, streamName: string): Promise<LiveTail> {
    const abort = new AbortController();
    const res = await logs.send(new StartLiveTailCommand({ logGroupIdentifiers: [groupArn], logStreamNames: [streamName] }), { abortSignal: abort.signal });
    const tail = new LiveTail(abort);
    void tail.consume(res.responseStream);
    return tail;
  }

  /** The events received since the last call, in the order AWS sent them. */
  take(): LogEvent[] {
    const events = this.queue;
    this.queue = [];
    return events;
  }

  stop(): void {
    this.ended = true;
    this.abort.abort();
  }

  private async consume(stream: AsyncIterable<StartLiveTailResponseStream> | undefined): Promise<void> {
    try {
      for await (const m of stream ?? []) {
        if (m.sessionUpdate) {
          if (m.sessionUpdate.sessionMetadata?.sampled) this.sampled = true;
          for (const e of m.sessionUpdate.sessionResults ?? []) this.queue.push({ timestamp: e.timestamp ?? 0, message: e.message ?? '' });
        } else if (m.SessionTimeoutException || m.SessionStreamingException) {
          this.reason = (m.SessionTimeoutException ?? m.SessionStreamingException)?.message;
          break;
        }
      }
      this.reason ??= 'the session ended';
    } catch (e) {
      if (!this.abort.signal.aborted) this.reason = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    } finally {
      this.ended = true;
    }
  }
}

/** `arn:aws:logs:R:A:log-group:G` from a build's `arn:…:log-group:G:log-stream:S`. */
export function logGroupArn(streamArn: string | undefined): string | undefined {
  const at = streamArn?.indexOf(':log-stream:') ?? -1;
  return streamArn && at > 0 ? streamArn.slice(0, at) : undefined;
}

/** A multiset of events by timestamp and text: which lines one source already printed, so another skips them. */
export class EventSet {
  private readonly counts = new Map<string, number>();

  add(e: LogEvent): void {
    const k = `${e.timestamp}\u0000${e.message}`;
    this.counts.set(k, (this.counts.get(k) ?? 0) + 1);
  }

  /** Removes one occurrence of `e`; false when there was none. */
  remove(e: LogEvent): boolean {
    const k = `${e.timestamp}\u0000${e.message}`;
    const n = this.counts.get(k) ?? 0;
    if (n === 0) return false;
    if (n === 1) this.counts.delete(k);
    else this.counts.set(k, n - 1);
    return true;
  }
}
