import type { Build } from '@aws-sdk/client-codebuild';
import { StartLiveTailCommand, type CloudWatchLogsClient, type StartLiveTailResponseStream } from '@aws-sdk/client-cloudwatch-logs';
import { withDeadline } from '../shared/deadline';
import type { LogEvent } from './phases';

/** How long a new session may take to deliver its first message, and how long a running one may go silent (ms). */
export const LIVE_TAIL_DEADLINES = { firstMessage: 5_000, silence: 10_000 };

/**
 * A CloudWatch Logs Live Tail session on one log stream: one request whose answer stays open, with an
 * update every second holding the events ingested since (none from before the session started). It
 * costs one request for up to 3 hours, where polling costs one every few seconds. It needs
 * `logs:StartLiveTail`; the caller falls back to polling when starting fails, the session ends early
 * (`ended`), or AWS sampled the events (over 500 a second: `sampled`).
 *
 * AWS sends its first message at once and an update every second, events or not: a session whose first message
 * is not there within 5 s (a proxy that hands on each answer only once it is complete holds it for good), or that
 * is silent for 10 s, is not delivering, and the caller follows by polling instead.
 */
export class LiveTail {
  private queue: LogEvent[] = [];
  ended = false;
  sampled = false;
  /** Why the session ended before it was stopped, when it did. */
  reason: string | undefined;
  private readonly watchdog: NodeJS.Timeout;

  private constructor(private readonly abort: AbortController, silenceMs: number) {
    this.watchdog = setTimeout(() => this.end(`no update for ${silenceMs / 1000} s`), silenceMs).unref();
  }

  /**
   * Starts a session and waits for its first message, all within the first-message deadline; throws what
   * StartLiveTail threw, or a TimeoutError.
   */
  static async start(logs: CloudWatchLogsClient, groupArn: string, streamName: string, deadlines = LIVE_TAIL_DEADLINES): Promise<LiveTail> {
    const abort = new AbortController();
    const command = new StartLiveTailCommand({ logGroupIdentifiers: [groupArn], logStreamNames: [streamName] });
    const first = await withDeadline(deadlines.firstMessage, undefined, 'StartLiveTail', async (signal) => {
      signal.addEventListener('abort', () => abort.abort(signal.reason), { once: true });
      const res = await logs.send(command, { abortSignal: abort.signal });
      const messages = (res.responseStream ?? emptyStream())[Symbol.asyncIterator]();
      return { messages, message: await messages.next() };
    });
    const tail = new LiveTail(abort, deadlines.silence);
    void tail.consume(first.message, first.messages);
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
    clearTimeout(this.watchdog);
    this.abort.abort();
  }

  /** Ends the session for `reason` (it was not stopped by the caller). */
  private end(reason: string): void {
    this.reason ??= reason;
    this.stop();
  }

  private async consume(first: IteratorResult<StartLiveTailResponseStream>, rest: AsyncIterator<StartLiveTailResponseStream>): Promise<void> {
    try {
      for (let next = first; !next.done; next = await rest.next()) {
        const m = next.value;
        this.watchdog.refresh();
        if (m.sessionUpdate) {
          if (m.sessionUpdate.sessionMetadata?.sampled) this.sampled = true;
          // A sampled update, and any after it, leave lines out: reads show them, after the lines queued so far.
          if (this.sampled) continue;
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
      clearTimeout(this.watchdog);
    }
  }
}

async function* emptyStream(): AsyncGenerator<StartLiveTailResponseStream> {}

/** A log stream a session can watch: its group's ARN and its name. */
export interface TailTarget {
  groupArn: string;
  name: string;
}

/**
 * Where a build will log, from StartBuild's answer, before its stream exists: a session started on it then misses
 * no line. The group is the one the build's LogsConfig names, else CodeBuild's default `/aws/codebuild/<project>`;
 * the stream is the build id's UUID, after the LogsConfig's stream prefix if it has one.
 */
export function plannedStream(build: Build): TailTarget | undefined {
  const arn = /^arn:([^:]+):codebuild:([^:]+):(\d+):build\/([^:]+):(.+)$/.exec(build.arn ?? '');
  const config = build.logs?.cloudWatchLogs;
  if (!arn || config?.status === 'DISABLED') return undefined;
  const [partition, region, account, project, uuid] = arn.slice(1) as [string, string, string, string, string];
  const group = config?.groupName ?? `/aws/codebuild/${project}`;
  return { groupArn: `arn:${partition}:logs:${region}:${account}:log-group:${group}`, name: config?.streamName ? `${config.streamName}/${uuid}` : uuid };
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

  clear(): void {
    this.counts.clear();
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
