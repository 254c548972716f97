/**
 * The build log's two sources, a Live Tail session and the GetLogEvents reader: each line either delivers is
 * shown once, through the phase renderer into the job log and build.log. The follower decides when to ask them.
 */
import { setTimeout as delay } from 'node:timers/promises';
import type { BuildPhase } from '@aws-sdk/client-codebuild';
import type { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { AwsLimits } from '../inputs/limits';
import type { Output } from '../shared/console';
import { withDeadline } from '../shared/deadline';
import { CALL_DEADLINE_MS } from '../shared/network';
import { errorName, isThrottling, isTransient } from '../shared/errors';
import { JobLog } from './job-log';
import { EventSet, LIVE_TAIL_DEADLINES, LiveTail, logGroupArn, type TailTarget } from './live-tail';
import { LogReader } from './log-reader';
import { Pace } from './pace';
import { PhaseRenderer, type LogEvent } from './phases';

export interface LogSourcesDeps {
  logs: CloudWatchLogsClient;
  /** The client that starts Live Tail sessions (Clients.liveTail: one attempt); default `logs`. */
  tailWith?: CloudWatchLogsClient;
  out: Output;
  /** The build.log artifact; without it the full log is not written. */
  logFile?: string;
  /** Bytes of build log the job log may hold (default STREAMED_LOG_LIMIT). */
  jobLogLimit?: number;
  now?: () => number;
  /** Live Tail's deadlines (default LIVE_TAIL_DEADLINES). */
  liveTail?: typeof LIVE_TAIL_DEADLINES;
  /** How long the final read of a gap is tried (default GAP_DRAIN_MS). */
  gapDrainMs?: number;
}

/** A new session's lines wait this long (ms) for the read of what the log held before it; then they are shown. */
export const CATCH_UP_WAIT_MS = 4_000;
/** After a session that ran to the end and left nothing unread, the final read gets this long (ms). */
export const TAILED_DRAIN_MS = 2_000;
/**
 * With lines never read (before a late session, or since the last poll), the final read is tried until this long (ms)
 * has passed without a page read: under an account-wide quota shared by many jobs the pages get through, if slowly;
 * throttled for good, the job ends after this.
 */
export const GAP_DRAIN_MS = 120_000;
/**
 * Pages a read asks for before the loop waits (a drain reads to the end): the wait grows with the pages read
 * (pace.ts), so a loud build's backlog is read at the budget's pace and the status stays on its schedule.
 */
const READ_PAGES = 4;
/** A read that failed for a passing reason is tried again after this long (ms), doubling up to the slowest poll. */
const READ_RETRY_MS = 1_000;

/** The wait before trying a read again after `failures` failures in a row: 1, 2, 4, then 8 s. */
function retryWait(failures: number): number {
  return Math.min(READ_RETRY_MS * 2 ** (failures - 1), Pace.silent.at(-1) as number);
}

/** A session asked for: when, on which stream, whether on the planned one, and how it went. */
interface TailStart {
  at: number;
  settled: boolean;
  target: TailTarget;
  planned: boolean;
  /** Why a planned start failed, until the build names its stream. */
  failure?: unknown;
}

/**
 * Reads, tails and shows one build's log. Reads go one at a time, in the background while a session runs, so a
 * read that is throttled or slow never holds back the session's lines; a session is started in the background,
 * so a slow StartLiveTail never holds back the reads.
 */
export class LogSources {
  private readonly renderer = new PhaseRenderer();
  private readonly jobLog: JobLog;
  private readonly now: () => number;
  private reader: LogReader | undefined;
  private tail: LiveTail | undefined;
  /**
   * The session's start, once tried: only once, except that a start on the stream StartBuild's answer planned
   * (`planned`) is tried again on the build's own stream when that is another, or when the planned group did not exist.
   */
  private tailStart: TailStart | undefined;
  private stopped = false;
  /** When the running session started. */
  private tailSince = 0;
  /** A read that began after the session started has ended: the lines from before it were shown. */
  private caughtUp = false;
  private gapNoted = false;
  /** Why the last read failed, while no read has succeeded since. */
  private readFailure: unknown;
  /** The read in flight: reads go one at a time (they share the reader's position). */
  private reading: Promise<void> | undefined;
  private background: { failures: number; retryAt: number; error?: unknown } = { failures: 0, retryAt: 0 };
  /** Lines the reader printed that Live Tail may deliver again, and lines Live Tail printed that a read will. */
  private readonly fromReads = new EventSet();
  private readonly fromTail = new EventSet();
  private logsOff = false;
  /** GetLogEvents requests the last read that succeeded made. */
  readCalls = 0;
  /** Pages with events read so far: a drain that reads on is not cut by its time limit. */
  private pagesRead = 0;
  /** The sections are closed: a read still in flight shows nothing. */
  private done = false;
  /** Aborts background reads once following ends (and when the follower's signal does). */
  private readonly quit = new AbortController();

  constructor(
    private readonly deps: LogSourcesDeps,
    /** The phases BatchGetBuilds reported last: the renderer stamps sections with CodeBuild's own times. */
    private readonly phases: () => BuildPhase[],
    private readonly signal: AbortSignal | undefined,
  ) {
    this.now = deps.now ?? Date.now;
    if (signal?.aborted) this.quit.abort();
    else signal?.addEventListener('abort', () => this.quit.abort(), { once: true });
    this.jobLog = new JobLog(deps.out, { ...(deps.logFile && { file: deps.logFile }), ...(deps.jobLogLimit && { limit: deps.jobLogLimit }) });
  }

  /** The log shows the build's last commands ended: its end is seconds away. */
  get ending(): boolean {
    return this.renderer.ending;
  }

  /** The log can be read: its stream is known, and neither disabled nor denied. */
  get readable(): boolean {
    return this.reader !== undefined && !this.logsOff;
  }

  /** A Live Tail session runs. */
  get tailing(): boolean {
    return this.tail !== undefined;
  }

  /** A Live Tail session was asked for and has not answered yet. */
  get tailStarting(): boolean {
    return this.tailStart !== undefined && !this.tailStart.settled;
  }

  /** When the running session started. */
  get tailStartedAt(): number {
    return this.tailSince;
  }

  /** The session's lines wait for the lines from before it (a read, or a status showing there were none). */
  get catchingUp(): boolean {
    return this.tail !== undefined && !this.caughtUp;
  }

  /**
   * The build named its stream: the reader reads it from here on (the first name counts). A session planned on
   * another stream has missed nothing there; it ends, and one starts on this name.
   */
  useStream(group: string, name: string): void {
    if (!this.reader) this.reader = new LogReader(this.deps.logs, { group, name });
    const target = this.tailStart?.target;
    if (target && (target.name !== name || !target.groupArn.endsWith(`:log-group:${group}`))) this.dropPlannedTail();
  }

  /**
   * A status read sent at `sentAt` found the build's stream not begun: a session that had started by then holds
   * every line, and they are shown as they come, with no read of what came before.
   */
  streamNotBegunAt(sentAt: number): void {
    if (this.tail && this.tailSince <= sentAt) this.caughtUp = true;
  }

  /** The project writes no CloudWatch log: says so once, with the build's link to its logs. */
  disabled(deepLink: string | undefined): void {
    if (this.logsOff) return;
    this.logsOff = true;
    this.deps.out.warn(`CloudWatch Logs are disabled for this CodeBuild project, so the build log is not shown here${deepLink ? `: ${deepLink}` : ''}`);
  }

  /**
   * Tried once, in the background: a Live Tail session on the build's stream (`streamArn` from the build). After a
   * planned start that failed on this very stream, only a group that did not exist yet (CodeBuild makes its default
   * group with a project's first build) is worth asking again; any other failure is said now.
   */
  startTail(streamArn: string | undefined): void {
    const groupArn = logGroupArn(streamArn);
    if (!groupArn || !this.reader) return;
    const planned = this.tailStart;
    if (planned?.planned && planned.failure !== undefined) {
      planned.planned = false;
      if (errorName(planned.failure) !== 'ResourceNotFoundException') return this.tailFailed(planned.failure);
      this.tailStart = undefined;
    }
    this.startTailOn({ groupArn, name: this.reader.stream.name }, false);
  }

  /**
   * Right after StartBuild, on the stream its answer plans (live-tail.ts plannedStream): a session that starts
   * before the stream does leaves no gap to read. If it fails, startTail decides once the build names its stream.
   */
  startPlannedTail(target: TailTarget | undefined): void {
    if (target) this.startTailOn(target, true);
  }

  private startTailOn(target: TailTarget, planned: boolean): void {
    if (this.tailStart || this.stopped) return;
    const start: TailStart = { at: this.now(), settled: false, target, planned };
    this.tailStart = start;
    LiveTail.start(this.deps.tailWith ?? this.deps.logs, target.groupArn, target.name, this.deps.liveTail).then(
      (tail) => {
        start.settled = true;
        if (this.stopped || this.tailStart !== start) return tail.stop();
        this.tail = tail;
        this.tailSince = this.now();
        this.caughtUp = false;
      },
      (e: unknown) => {
        start.settled = true;
        if (this.stopped || this.tailStart !== start) return;
        // The planned group may not exist yet, or not be the one the build logs to: the build's stream name tells.
        // A session that did not answer in time is not asked twice.
        if (planned && errorName(e) !== 'TimeoutError') start.failure = e;
        else this.tailFailed(e);
      },
    );
  }

  private tailFailed(e: unknown): void {
    this.deps.out.info(`Following the log by polling: StartLiveTail failed (${errorName(e) ?? 'Error'}); ${tailFailure(e)}.`);
  }

  /** Ends a session started on the planned stream (one running or starting); it starts again once the build names its stream. */
  dropPlannedTail(): void {
    if (!this.tailStart?.planned || this.stopped) return;
    this.tail?.stop();
    this.tail = undefined;
    this.tailStart = undefined;
  }

  /** A session that ended or sampled the lines is dropped, with one line on why: reads follow the log from here. */
  dropEndedTail(): void {
    if (!this.tail || !(this.tail.ended || this.tail.sampled)) return;
    this.deps.out.info(`Following the log by polling from here: Live Tail ${this.tail.sampled ? 'sampled the lines (over 500 a second)' : `ended (${this.tail.reason ?? 'closed'})`}.`);
    this.takeTail();
    this.tail.stop();
    this.tail = undefined;
    // No session delivers the reads' lines again; the session's lines stay until the reads pass them.
    this.fromReads.clear();
  }

  /**
   * Shows what Live Tail pushed since the last call; returns how many lines were new. Until the lines from before
   * the session are read they wait, CATCH_UP_WAIT_MS at most: then one line marks the gap, and they are shown.
   */
  takeTail(): number {
    if (!this.tail) return 0;
    if (!this.caughtUp && !this.gapNoted) {
      if (this.now() - this.tailSince < CATCH_UP_WAIT_MS) return 0;
      this.gapNoted = true;
      const why = !this.reader ? 'the build status does not name its stream yet'
        : `GetLogEvents: ${this.readFailure === undefined ? 'no answer yet' : (errorName(this.readFailure) ?? 'Error')}`;
      this.deps.out.warn(`The build's earlier lines, if any, are not read yet (${why}): showing Live Tail's lines meanwhile; the earlier ones follow when a read succeeds.`);
    }
    return this.show(this.tail.take(), 'tail');
  }

  /**
   * While a session runs: starts a read in the background unless one is in flight or a failed one waits for its
   * retry. `due` asks for a read now (the catch-up, and one with each status, which keeps the reader in step).
   */
  readInBackground(due: boolean): void {
    if (this.reading || !this.readable || this.now() < this.background.retryAt) return;
    if (!due && this.caughtUp) return;
    void this.read(false, this.quit.signal).then(
      () => (this.background = { failures: 0, retryAt: 0 }),
      (e: unknown) => {
        const failures = this.background.failures + 1;
        this.background = { failures, retryAt: this.now() + retryWait(failures), error: e };
      },
    );
  }

  /** The last background read's failure, once: the follower decides whether following can go on. */
  takeReadFailure(): unknown {
    const { error } = this.background;
    if (error === undefined) return undefined;
    this.background = { ...this.background, error: undefined };
    return error;
  }

  /** Reads the stream where the last read ended (a drain: to its very end) and shows the new lines; returns how many. */
  async read(drain: boolean, signal = this.signal): Promise<number> {
    if (!this.reader) return 0;
    while (this.reading && !signal?.aborted) await settledOrAborted(this.reading, signal);
    signal?.throwIfAborted();
    const startedAfterTail = this.tailing;
    const reading = this.readOnce(this.reader, drain, signal, this.gapNoted && !this.caughtUp);
    // Others only wait for it to settle; its failure is this caller's to handle.
    const mine = reading.then(() => undefined, () => undefined);
    this.reading = mine;
    try {
      const { shown, atEnd } = await reading;
      this.readFailure = undefined;
      // Only a read that reached the end has shown everything from before the session.
      if (startedAfterTail && atEnd) this.caughtUp = true;
      return shown;
    } catch (e) {
      this.readFailure = e;
      throw e;
    } finally {
      if (this.reading === mine) this.reading = undefined;
    }
  }

  /**
   * One read, each page shown as it arrives (a loud build's pages are never all held); `late` when Live Tail's lines
   * were shown before these (a gap was marked).
   */
  private async readOnce(reader: LogReader, drain: boolean, signal: AbortSignal | undefined, late: boolean): Promise<{ shown: number; atEnd: boolean }> {
    let shown = 0;
    let heading = late ? "The build's earlier lines, read only now:" : undefined;
    const onPage = (events: LogEvent[]) => {
      this.pagesRead++;
      const n = this.show(events, 'read', heading);
      if (n > 0) heading = undefined;
      shown += n;
    };
    try {
      // A drain reads to the end, READ_PAGES at a time at the budget's pace (no wait to confirm the end after a short page).
      const beforePage = (page: number, full: boolean) => (full && page % READ_PAGES === 0 ? delay(Pace.page * READ_PAGES, undefined, signal ? { signal } : {}) : undefined);
      const { calls, atEnd } = await reader.read({ drain, maxPages: drain ? Infinity : READ_PAGES, callMs: CALL_DEADLINE_MS, onPage, ...(drain && { beforePage }), ...(signal && { signal }) });
      this.readCalls = calls;
      return { shown, atEnd };
    } finally {
      if (reader.denied && !this.logsOff) {
        this.logsOff = true;
        this.deps.out.warn(`Cannot read the build log (AccessDeniedException): the role needs logs:GetLogEvents on log group ${reader.stream.group}. Following the build status only.`);
      }
    }
  }

  /**
   * The build is complete: the session ends, and the stream is read to its end. After a session that ran to the end
   * and left nothing unread, that read gets TAILED_DRAIN_MS; otherwise (lines before the session, or since the last
   * poll, were never read) GAP_DRAIN_MS. Then a failure is one line, and following ends.
   */
  async drain(): Promise<void> {
    // A session that sampled or ended is no session that showed everything: the drain is then a reader's.
    this.dropEndedTail();
    const tailed = this.tail !== undefined && !this.tail.ended;
    // Caught up, the session's lines come first; otherwise the read does, and the session's leftovers after it.
    if (this.tail && this.caughtUp) this.takeTail();
    await this.drainWithin(tailed && this.caughtUp ? TAILED_DRAIN_MS : (this.deps.gapDrainMs ?? GAP_DRAIN_MS), tailed);
    if (this.tail) {
      this.caughtUp = true;
      this.takeTail();
      this.tail.stop();
      this.tail = undefined;
    }
  }

  /**
   * The final read, tried again while it fails for a passing reason until `ms` pass without a page read (more slowly
   * each time: an account-wide quota is shared), then one line on what is missing: after a caught-up session only its
   * last second, after a gap the lines before it, and when polling the lines since the last read.
   */
  private async drainWithin(ms: number, tailed: boolean): Promise<void> {
    let until = this.now() + ms;
    for (let failures = 1; ; failures++) {
      const pages = this.pagesRead;
      try {
        await withDeadline(Math.max(until - this.now(), 1), this.signal, 'GetLogEvents', (signal) => this.read(true, signal));
        return;
      } catch (e) {
        if (this.signal?.aborted) throw e;
        // Pages got through (a loud build's backlog read at the budget's pace, or a quota letting some by): the wait starts again.
        if (this.pagesRead > pages) {
          until = this.now() + ms;
          failures = 1;
        }
        const retry = retryWait(failures);
        if (this.now() + retry >= until || !(isThrottling(e) || isTransient(e))) {
          const stream = this.reader ? ` (log group ${this.reader.stream.group}, stream ${this.reader.stream.name})` : '';
          const failed = `the final read of its log failed (${errorName(e) ?? 'Error'}); CloudWatch Logs has the whole log${stream}.`;
          // After a caught-up session only Live Tail's last second is unconfirmed: that is no warning.
          if (tailed && this.caughtUp) this.deps.out.info(`Could not confirm the build's last second of log lines: ${failed}`);
          else this.deps.out.warn(`${tailed ? "The build's first lines are missing here" : "The build's lines since the last read are missing here"}: ${failed}`);
          return;
        }
        await delay(retry, undefined, this.signal ? { signal: this.signal } : {});
      }
    }
  }

  /** After the drain: closes the sections and adds the phases that wrote nothing; nothing is shown after this. */
  finish(phases: BuildPhase[], buildStatus: string | undefined): void {
    this.jobLog.show(this.renderer.finish(phases, buildStatus));
    this.done = true;
    this.quit.abort();
  }

  /** Following stopped early: the session ends, and the open section closes where the log stopped. */
  abort(): void {
    this.stop();
    this.jobLog.show(this.renderer.abort());
  }

  /** Ends the session, if one runs or is starting (following ended, however it ended). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.quit.abort();
    this.tail?.stop();
    const start = this.tailStart;
    const waited = start && !start.settled ? this.now() - start.at : 0;
    if (waited > (this.deps.liveTail ?? LIVE_TAIL_DEADLINES).firstMessage) {
      this.deps.out.info(`Followed the log by polling: StartLiveTail had not answered after ${Math.round(waited / 1000)} s (${BUFFERING_PROXY}).`);
    }
  }

  /** Prints the events no other source printed; returns how many. */
  private show(events: LogEvent[], from: 'tail' | 'read', heading?: string): number {
    if (this.done) return 0;
    const [mine, other] = from === 'tail' ? [this.fromTail, this.fromReads] : [this.fromReads, this.fromTail];
    const fresh = events.filter((e) => !other.remove(e));
    if (heading && fresh.length > 0) this.deps.out.info(heading);
    // Only while a session runs or starts may the other source deliver the same lines again.
    if (this.tail || this.tailStarting) for (const e of fresh) mine.add(e);
    this.jobLog.record(fresh);
    this.jobLog.show(this.renderer.render(fresh, this.phases()));
    return fresh.length;
  }
}

/** Resolves when `work` settles or `signal` aborts, whichever comes first. */
async function settledOrAborted(work: Promise<unknown>, signal: AbortSignal | undefined): Promise<void> {
  let onAbort = () => {};
  const aborted = new Promise<void>((resolve) => {
    onAbort = () => resolve();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  try {
    await Promise.race([work.catch(() => undefined), aborted]);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/** What holds a Live Tail session's messages back where AWS sends them at once. */
const BUFFERING_PROXY = 'a slow answer, or a proxy that hands on each answer only once it is complete';

/** Why a session could not start, and what that means. */
function tailFailure(e: unknown): string {
  const name = errorName(e);
  if (name === 'LimitExceededException') return `the account's ${AwsLimits.liveTailSessions.max} concurrent Live Tail sessions are in use (other jobs' builds, or the console)`;
  if (name === 'TimeoutError') {
    return `its first message did not arrive in time (${BUFFERING_PROXY})`;
  }
  if (name === 'AccessDeniedException') return 'the role needs logs:StartLiveTail to follow it with fewer requests';
  return 'polling costs more requests, and shows lines a few seconds later';
}
