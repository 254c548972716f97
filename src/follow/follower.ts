import { setTimeout as delay } from 'node:timers/promises';
import { BatchGetBuildsCommand, type Build, type CodeBuildClient } from '@aws-sdk/client-codebuild';
import type { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import type { Output } from '../shared/console';
import { AwsStepError, errorName, isThrottling, isTransient } from '../shared/errors';
import { JobLog } from './job-log';
import { EventSet, LiveTail, logGroupArn } from './live-tail';
import { LogReader } from './log-reader';
import { formatDuration, PhaseRenderer, queueSummary, type LogEvent } from './phases';

export interface FollowDeps {
  codebuild: CodeBuildClient;
  logs: CloudWatchLogsClient;
  out: Output;
  /** The build.log artifact; without it the full log is not written. */
  logFile?: string;
  /** Bytes of build log the job log may hold (default STREAMED_LOG_LIMIT). */
  jobLogLimit?: number;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => number;
}

/**
 * The pace of the loop (ms). The budget is account-wide (GetLogEvents allows 10 requests a second per
 * account and region): at most 30 requests a build-minute while lines flow and 10 while the build is
 * silent. With Live Tail the log costs one request a session, and the status and one read of the log follow
 * every 15 s (every minute when silent). Polling reads the log every 2.5 s while lines flow and slows to every 8 s
 * when silent. Once the log shows the last phase ended, the status is read every second until done.
 */
export const Pace = {
  flowing: 2_500,
  /** Silent polls slow down through these steps. */
  silent: [3_000, 5_000, 8_000],
  /** The build's status at least this often while its log is read... */
  status: 15_000,
  /** ...and this often while the log is silent. */
  silentStatus: 60_000,
  ending: 1_000,
  /** Taking what Live Tail pushed (no request; AWS pushes once a second). */
  tail: 500,
  /** Ceiling while AWS throttles: slower, but never giving up while the build runs. */
  throttled: 30_000,
} as const;

/** Polls that failed in a row (each after the SDK's own retries, see clients.ts) before giving up. */
export const MAX_FAILED_POLLS = 8;
/** BatchGetBuilds answers "not found" this many times in a row: the build is gone. */
const MAX_MISSING = 3;
/** A build queued this long gets one line on why. */
const QUEUE_NOTICE_MS = 60_000;

/**
 * Follows a CodeBuild build until it completes: each phase in a collapsible section holding its log
 * lines, stamped with CodeBuild's own times, and the log drained to its end. Returns the final Build, or
 * the last one seen (not complete) as soon as `signal` aborts. Throws AwsStepError when it cannot go on;
 * the build then still runs, and the caller decides what to do with it.
 */
export async function followBuild(deps: FollowDeps, buildId: string, signal?: AbortSignal): Promise<Build> {
  return new Follower(deps, buildId, signal).run();
}

/** The follow loop and everything it knows, in one place. */
class Follower {
  private readonly now: () => number;
  private readonly renderer = new PhaseRenderer();
  private readonly jobLog: JobLog;
  private readonly step: string;
  private build: Build | undefined;
  private reader: LogReader | undefined;
  private tail: LiveTail | undefined;
  private tailTried = false;
  /** The lines from before the session started were read. */
  private caughtUp = false;
  /** Lines the reader printed that Live Tail may deliver again, and lines Live Tail printed that a read will. */
  private readonly fromReads = new EventSet();
  private readonly fromTail = new EventSet();
  private logsOff = false;
  private statusAt = -Infinity;
  /** When lines last arrived. */
  private linesAt: number;
  private silentStep = 0;
  private failed = 0;
  /** The wait after the last throttled poll; 0 when the last poll was not throttled. */
  private throttled = 0;
  private missing = 0;
  private queueNoted = false;

  constructor(
    private readonly deps: FollowDeps,
    private readonly buildId: string,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.now = deps.now ?? Date.now;
    this.linesAt = this.now();
    this.jobLog = new JobLog(deps.out, { ...(deps.logFile && { file: deps.logFile }), ...(deps.jobLogLimit && { limit: deps.jobLogLimit }) });
    this.step = `Following CodeBuild build ${buildId}`;
  }

  async run(): Promise<Build> {
    const sleep = this.deps.sleep ?? ((ms, s) => delay(ms, undefined, s ? { signal: s } : {}));
    try {
      for (;;) {
        if (this.signal?.aborted) return this.aborted();
        let wait: number;
        try {
          const next = await this.poll();
          if (next === undefined) return this.build as Build;
          if (this.throttled) this.deps.out.info('AWS stopped throttling: following at the usual pace again.');
          this.failed = 0;
          this.throttled = 0;
          wait = next;
        } catch (e) {
          if (this.signal?.aborted) return this.aborted();
          wait = this.failedPoll(e);
        }
        try {
          await sleep(wait, this.signal);
        } catch (e) {
          if (this.signal?.aborted) return this.aborted();
          throw e;
        }
      }
    } finally {
      this.tail?.stop();
    }
  }

  /** One poll; returns how long to wait before the next, or undefined once the build is complete and drained. */
  private async poll(): Promise<number | undefined> {
    const t = this.now();
    const silent = t - this.linesAt > Pace.flowing * 2;
    const every = this.renderer.ending ? Pace.ending * 0.9 : silent ? Pace.silentStatus : Pace.status;
    const statusDue = !this.reader || this.logsOff || t - this.statusAt >= every;
    if (this.tail && (this.tail.ended || this.tail.sampled)) {
      this.deps.out.info(`Following the log by polling from here: Live Tail ${this.tail.sampled ? 'sampled the lines (over 500 a second)' : `ended (${this.tail.reason ?? 'closed'})`}.`);
      this.tail.stop();
      this.tail = undefined;
    }
    if (this.tail) {
      // First what the log held before the session started; the session's lines wait in its queue.
      if (!this.caughtUp) {
        await this.read(false);
        this.caughtUp = true;
      }
      const wasEnding = this.renderer.ending;
      if (this.show(this.tail.take(), 'tail') > 0) this.linesAt = this.now();
      // The lines just shown tell the last phase ended: ask for the status now.
      if ((statusDue || this.renderer.ending !== wasEnding) && (await this.finished())) return undefined;
      // With each status, one read keeps the reader in step with the session: the lines both delivered are
      // forgotten (memory stays small), and a line the session dropped still shows within seconds.
      if (statusDue && !this.renderer.ending) await this.read(false);
      return Pace.tail;
    }
    if (statusDue && (await this.finished())) return undefined;
    // While it ends there is nothing to wait for but the status; the final drain reads the last lines.
    if (this.renderer.ending) return Pace.ending;
    if (!this.reader || this.logsOff) return this.silentPace();
    if (!this.tailTried && (await this.startTail())) return this.poll();
    const lines = await this.read(false);
    // The lines just read show the last phase ended: ask for the status now rather than a second later.
    if (this.renderer.ending) return (await this.finished()) ? undefined : Pace.ending;
    if (lines === 0) return this.silentPace();
    this.linesAt = this.now();
    this.silentStep = 0;
    return Pace.flowing;
  }

  /** Reads the status; once the build is complete, drains its log and prints the end. */
  private async finished(): Promise<boolean> {
    const build = await this.readStatus();
    if (!build?.buildComplete) return false;
    this.tail?.stop();
    this.tail = undefined;
    await this.read(true);
    this.jobLog.show(this.renderer.finish(build.phases ?? [], build.buildStatus));
    const summary = queueSummary(build.phases ?? [], build.endTime);
    if (summary) this.deps.out.info(summary);
    return true;
  }

  private async readStatus(): Promise<Build | undefined> {
    const res = await this.deps.codebuild.send(new BatchGetBuildsCommand({ ids: [this.buildId] }), this.signal ? { abortSignal: this.signal } : {});
    this.statusAt = this.now();
    const build = res.builds?.[0];
    if (!build) {
      if (++this.missing >= MAX_MISSING) {
        throw new AwsStepError(this.step, new Error('BatchGetBuilds no longer finds the build'), 'The build was deleted, or the credentials or region changed while following it.');
      }
      return undefined;
    }
    this.missing = 0;
    this.build = build;
    this.noteStream(build);
    this.noteQueue(build);
    return build;
  }

  private noteQueue(build: Build): void {
    const since = build.currentPhase === 'QUEUED' ? build.phases?.find((p) => p.phaseType === 'QUEUED')?.startTime : undefined;
    if (!since || this.queueNoted || this.now() - since.getTime() < QUEUE_NOTICE_MS) return;
    this.queueNoted = true;
    this.deps.out.info(
      `The build is still queued after ${formatDuration((this.now() - since.getTime()) / 1000)}: CodeBuild starts it when one of the account's ` +
        'concurrent builds for this compute type ends. Queue time counts against queued_timeout, not build_timeout.',
    );
  }

  private noteStream(build: Build): void {
    const { groupName, streamName } = build.logs ?? {};
    if (!this.reader && groupName && streamName) this.reader = new LogReader(this.deps.logs, { group: groupName, name: streamName });
    if (!this.logsOff && build.logs?.cloudWatchLogs?.status === 'DISABLED') {
      this.logsOff = true;
      this.deps.out.warn(`CloudWatch Logs are disabled for this CodeBuild project, so the build log is not shown here${build.logs.deepLink ? `: ${build.logs.deepLink}` : ''}`);
    }
  }

  /** Tried once: a Live Tail session on the build's stream; true when it runs. */
  private async startTail(): Promise<boolean> {
    this.tailTried = true;
    const group = logGroupArn(this.build?.logs?.cloudWatchLogsArn);
    if (!group || !this.reader) return false;
    try {
      this.tail = await LiveTail.start(this.deps.logs, group, this.reader.stream.name);
      return true;
    } catch (e) {
      this.deps.out.info(`Following the log by polling: StartLiveTail failed (${errorName(e) ?? 'Error'}); the role needs logs:StartLiveTail to follow it with fewer requests.`);
      return false;
    }
  }

  private async read(drain: boolean): Promise<number> {
    if (!this.reader) return 0;
    const { events } = await this.reader.read({ drain, maxPages: drain ? Infinity : 20, ...(this.signal && { signal: this.signal }) });
    if (this.reader.denied && !this.logsOff) {
      this.logsOff = true;
      this.deps.out.warn(`Cannot read the build log (AccessDeniedException): the role needs logs:GetLogEvents on log group ${this.reader.stream.group}. Following the build status only.`);
    }
    return this.show(events, 'read');
  }

  /** Prints the events no other source printed; returns how many. */
  private show(events: LogEvent[], from: 'tail' | 'read'): number {
    const [mine, other] = from === 'tail' ? [this.fromTail, this.fromReads] : [this.fromReads, this.fromTail];
    const fresh = events.filter((e) => !other.remove(e));
    // Only while a session runs may the other source deliver the same lines again.
    if (this.tail) for (const e of fresh) mine.add(e);
    this.jobLog.record(fresh);
    this.jobLog.show(this.renderer.render(fresh, this.build?.phases ?? []));
    return fresh.length;
  }

  private aborted(): Build {
    // The caller decides what to do with a build still running (main.ts stops it).
    this.tail?.stop();
    this.jobLog.show(this.renderer.abort());
    return this.build ?? { id: this.buildId };
  }

  private silentPace(): number {
    const i = Math.min(this.silentStep, Pace.silent.length - 1);
    this.silentStep++;
    return Pace.silent[i] as number;
  }

  /**
   * A poll failed although the SDK retried it. Throttling only slows the loop: the build runs on, and
   * giving up would leave it unwatched. Other transient failures may repeat MAX_FAILED_POLLS times;
   * anything else ends following at once.
   */
  private failedPoll(e: unknown): number {
    if (e instanceof AwsStepError) throw e;
    const reason = `${errorName(e) ?? 'Error'}: ${e instanceof Error ? e.message : String(e)}`;
    if (isThrottling(e)) {
      if (!this.throttled) this.deps.out.warn(`AWS is throttling the requests that follow the build (${reason}): following more slowly.`);
      this.throttled = Math.min(Math.max(this.throttled * 2, Pace.silent.at(-1) as number), Pace.throttled);
      return this.throttled;
    }
    if (isTransient(e) && ++this.failed < MAX_FAILED_POLLS) {
      if (this.failed === 1) this.deps.out.warn(`Following the build failed (${reason}); trying again.`);
      return Pace.silent.at(-1) as number;
    }
    const hint = errorName(e) === 'AccessDeniedException' ? 'The role needs codebuild:BatchGetBuilds on the project.'
      : isTransient(e) ? `AWS or the network failed ${MAX_FAILED_POLLS} polls in a row.` : undefined;
    throw new AwsStepError(this.step, e, hint);
  }
}
