import { GetLogEventsCommand, type CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { withDeadline } from '../shared/deadline';
import { errorName } from '../shared/errors';
import type { LogEvent } from './phases';

export interface LogStream {
  group: string;
  name: string;
}

export interface ReadResult {
  events: LogEvent[];
  /** GetLogEvents requests made. */
  calls: number;
  /** The read reached the stream's current end (it did not stop at `maxPages`). */
  atEnd: boolean;
}

/** GetLogEvents answers at most 10,000 events or 1 MB a page; a page well below both is the current end. */
const PAGE_EVENTS = 10_000;
const PAGE_BYTES = 900_000;

/**
 * Reads one CloudWatch log stream forward from its head, each read continuing where the last one ended.
 * A read stops at the current end without asking for the empty page that would confirm it, except when
 * draining a finished build: then it reads until the forward token stops changing, because CloudWatch may
 * answer empty pages (each with a new token) before the real end.
 */
export class LogReader {
  private token: string | undefined;
  /** Set when the role may not read the log; the caller says so once and follows the status only. */
  denied = false;

  constructor(
    private readonly logs: CloudWatchLogsClient,
    readonly stream: LogStream,
  ) {}

  /**
   * Reads on from where the last read ended; each page's request gets `callMs` to answer (a TimeoutError then). With
   * `onPage`, each page's events go there as it arrives and are not kept: a loud build's pages are not all held.
   */
  async read(opts: {
    drain: boolean;
    maxPages?: number;
    signal?: AbortSignal;
    callMs: number;
    onPage?: (events: LogEvent[]) => void;
    /**
     * Awaited before each page after the first (`page` counts from 0; `full`: the page before it was full, so more
     * is likely): a long drain keeps to the budget.
     */
    beforePage?: (page: number, full: boolean) => Promise<void> | undefined;
  }): Promise<ReadResult> {
    const events: LogEvent[] = [];
    let calls = 0;
    if (this.denied) return { events, calls, atEnd: true };
    let full = false;
    for (let page = 0; page < (opts.maxPages ?? 20); page++) {
      let res;
      if (page > 0) await opts.beforePage?.(page, full);
      calls++;
      try {
        const input = { logGroupName: this.stream.group, logStreamName: this.stream.name, startFromHead: true, ...(this.token && { nextToken: this.token }) };
        res = await withDeadline(opts.callMs, opts.signal, 'GetLogEvents', (abortSignal) => this.logs.send(new GetLogEventsCommand(input), { abortSignal }));
      } catch (e) {
        // CodeBuild names the stream a little before it creates it.
        if (errorName(e) === 'ResourceNotFoundException') return { events, calls, atEnd: true };
        if (errorName(e) === 'AccessDeniedException') {
          this.denied = true;
          return { events, calls, atEnd: true };
        }
        throw e;
      }
      let bytes = 0;
      const got: LogEvent[] = opts.onPage ? [] : events;
      for (const e of res.events ?? []) {
        const message = e.message ?? '';
        bytes += message.length + 26;
        got.push({ timestamp: e.timestamp ?? 0, message });
      }
      const count = res.events?.length ?? 0;
      const next = res.nextForwardToken;
      const previous = this.token;
      if (next) this.token = next;
      if (opts.onPage && got.length > 0) opts.onPage(got);
      full = count >= PAGE_EVENTS || bytes >= PAGE_BYTES;
      if (!next || next === previous) return { events, calls, atEnd: true };
      if (opts.drain) continue;
      // Caught up: a page that is not full, or an empty first page. Only an empty page with a new token means more.
      if (count > 0 ? !full : previous === undefined) return { events, calls, atEnd: true };
    }
    return { events, calls, atEnd: false };
  }
}
