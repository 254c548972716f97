/**
 * Following one CodeBuild build: the loop that reads its status, asks the log sources (log-sources.ts) for its
 * lines and waits as the pace (pace.ts) says, then drains the log once the build is complete.
 */
import { setTimeout as delay } from 'node:timers/promises';
import { BatchGetBuildsCommand, type Build, type CodeBuildClient } from '@aws-sdk/client-codebuild';
import { withDeadline } from '../shared/deadline';
import { CALL_DEADLINE_MS } from '../shared/network';
import { AwsStepError, isThrottling, isTransient } from '../shared/errors';
import { plannedStream } from './live-tail';
import { LogSources, type LogSourcesDeps } from './log-sources';
import { Pace, Pacer } from './pace';
import { formatDuration, queueSummary } from './phases';

export interface FollowDeps extends LogSourcesDeps {
  codebuild: CodeBuildClient;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** BatchGetBuilds answers "not found" this many times in a row: the build is gone. */
const MAX_MISSING = 3;
/** A build queued this long gets one line on why. */
const QUEUE_NOTICE_MS = 60_000;
/** Phases before CodeBuild begins the build's log stream. */
const BEFORE_LOG = new Set(['SUBMITTED', 'QUEUED', 'PROVISIONING']);

/**
 * Follows a CodeBuild build (`started`: StartBuild's answer) until it completes: each phase in a collapsible section
 * holding its log lines, stamped with CodeBuild's own times, and the log drained to its end. Returns the final Build,
 * or the last one seen (not complete) as soon as `signal` aborts. Throws AwsStepError when it cannot go on; the
 * build then still runs, and the caller decides what to do with it.
 */
export async function followBuild(deps: FollowDeps, started: Build, signal?: AbortSignal): Promise<Build> {
  return new Follower(deps, started, signal).run();
}

/** The follow loop: the build's status, and when to ask the log sources for lines. */
class Follower {
  private readonly now: () => number;
  private readonly pace: Pacer;
  private readonly log: LogSources;
  private readonly step: string;
  private readonly buildId: string;
  private build: Build | undefined;
  private statusAt = -Infinity;
  /** When the last status read that answered was sent. */
  private statusSentAt = -Infinity;
  /** After a failed status read while a session runs: the next is not before this. */
  private statusRetryAt = -Infinity;
  /** The last status read failed. */
  private statusFailed = false;
  /** When the last background read was asked for while a session started. */
  private readAt = -Infinity;
  private missing = 0;
  private queueNoted = false;

  constructor(
    private readonly deps: FollowDeps,
    private readonly started: Build,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.now = deps.now ?? Date.now;
    this.buildId = started.id ?? '';
    this.step = `Following CodeBuild build ${this.buildId}`;
    this.pace = new Pacer(deps.out, this.step, this.now());
    this.log = new LogSources(deps, () => this.build?.phases ?? [], signal);
  }

  async run(): Promise<Build> {
    const sleep = this.deps.sleep ?? ((ms, s) => delay(ms, undefined, s ? { signal: s } : {}));
    // Started now, the session usually runs before the build's stream begins: no line comes before it.
    this.log.startPlannedTail(plannedStream(this.started));
    try {
      for (;;) {
        if (this.signal?.aborted) return this.aborted();
        let wait: number;
        try {
          const next = await this.poll();
          if (next === undefined) return this.build as Build;
          // A poll that skipped a failed status read has not shown that the failure passed.
          if (!this.statusFailed) this.pace.succeeded();
          wait = next;
        } catch (e) {
          if (this.signal?.aborted) return this.aborted();
          wait = this.pace.failedPoll(e);
          // While a session runs or starts, only what failed waits: its lines and the status keep their pace.
          if (this.log.tailing || this.log.tailStarting) {
            if (this.statusFailed) this.statusRetryAt = this.now() + wait;
            wait = Pace.tail;
          }
        }
        try {
          await sleep(wait, this.signal);
        } catch (e) {
          if (this.signal?.aborted) return this.aborted();
          throw e;
        }
      }
    } finally {
      this.log.stop();
    }
  }

  /**
   * One poll; returns how long to wait before the next, or undefined once the build is complete and drained.
   * While a session runs, the status is read on its own schedule and reads go on in the background, so neither
   * waits for the other or for the session.
   */
  private async poll(): Promise<number | undefined> {
    const t = this.now();
    const statusDue = t >= this.statusRetryAt && (this.statusOwed() || t - this.statusAt >= this.statusEvery(t));
    this.log.dropEndedTail();
    if (this.log.tailing) {
      const failed = this.log.takeReadFailure();
      // Throttled or passing failures are retried in the background; any other ends following.
      if (failed !== undefined && !isThrottling(failed) && !isTransient(failed)) throw failed;
      const wasEnding = this.log.ending;
      if (this.log.takeTail() > 0) this.pace.linesArrived(this.now());
      // With each status, one read keeps the reader in step with the session: the lines both delivered are
      // forgotten (memory stays small), and a line the session dropped still shows within seconds.
      this.log.readInBackground(statusDue && !this.log.ending);
      // The lines just shown tell the last phase ended: ask for the status now.
      const endShown = this.log.ending !== wasEnding && t >= this.statusRetryAt;
      if ((statusDue || endShown) && (await this.finished())) return undefined;
      return Pace.tail;
    }
    if (statusDue && (await this.finished())) return undefined;
    // While it ends there is nothing to wait for but the status; the final drain reads the last lines.
    if (this.log.ending) return Pace.ending;
    // A session that started (or starts) before the stream is named takes the tailing branch from the next poll.
    if (!this.log.readable) return this.log.tailStarting || this.log.tailing ? Pace.tail : this.pace.silent();
    this.log.startTail(this.build?.logs?.cloudWatchLogsArn);
    // While a session starts, reads go on in the background: a slow one must not hold back the session's lines.
    if (this.log.tailStarting) {
      // At the pace of flowing lines: a start that takes seconds must not multiply the reads.
      if (t - this.readAt >= Pace.flowing) {
        this.readAt = t;
        this.log.readInBackground(true);
      }
      return Pace.tail;
    }
    const lines = await this.log.read(false);
    // The lines just read show the last phase ended: ask for the status now rather than a second later.
    if (this.log.ending) return (await this.finished()) ? undefined : Pace.ending;
    if (lines === 0) return this.pace.silent();
    return this.pace.flowing(this.now(), this.log.readCalls);
  }

  /** How often the status is read now. */
  private statusEvery(t: number): number {
    if (this.log.readable || this.log.ending) return this.pace.statusEvery(t, this.log.ending);
    // The stream is not named yet: with a session (running or starting) at the slowest silent pace, else at each poll.
    return this.log.tailing || this.log.tailStarting ? (Pace.silent.at(-1) as number) : 0;
  }

  /** A session's lines wait, and a status read sent after it started may show that the stream had not begun. */
  private statusOwed(): boolean {
    return this.log.catchingUp && !this.log.readable && this.statusSentAt < this.log.tailStartedAt;
  }

  /** Reads the status; once the build is complete, drains its log and prints the end. */
  private async finished(): Promise<boolean> {
    const build = await this.readStatus();
    if (!build?.buildComplete) return false;
    await this.log.drain();
    this.log.finish(build.phases ?? [], build.buildStatus);
    const summary = queueSummary(build.phases ?? [], build.endTime);
    if (summary) this.deps.out.info(summary);
    return true;
  }

  private async readStatus(): Promise<Build | undefined> {
    this.statusFailed = true;
    const sentAt = this.now();
    const res = await withDeadline(CALL_DEADLINE_MS, this.signal, 'BatchGetBuilds', (abortSignal) =>
      this.deps.codebuild.send(new BatchGetBuildsCommand({ ids: [this.buildId] }), { abortSignal }),
    );
    this.statusFailed = false;
    this.statusAt = this.now();
    this.statusSentAt = sentAt;
    const build = res.builds?.[0];
    if (!build) {
      if (++this.missing >= MAX_MISSING) {
        throw new AwsStepError(this.step, new Error('BatchGetBuilds no longer finds the build'), 'The build was deleted, or the credentials or region changed while following it.');
      }
      return undefined;
    }
    this.missing = 0;
    this.build = build;
    if (!build.logs?.streamName && BEFORE_LOG.has(build.currentPhase ?? '')) this.log.streamNotBegunAt(sentAt);
    this.noteStream(build);
    this.noteQueue(build);
    return build;
  }

  private noteQueue(build: Build): void {
    const since = build.currentPhase === 'QUEUED' ? build.phases?.find((p) => p.phaseType === 'QUEUED')?.startTime : undefined;
    if (!since || this.queueNoted || this.now() - since.getTime() < QUEUE_NOTICE_MS) return;
    this.queueNoted = true;
    // A session costs by the minute: it starts again once the build names its stream.
    this.log.dropPlannedTail();
    this.deps.out.info(
      `The build is still queued after ${formatDuration((this.now() - since.getTime()) / 1000)}: CodeBuild starts it when one of the account's ` +
        'concurrent builds for this compute type ends. Queue time counts against queued_timeout, not build_timeout.',
    );
  }

  private noteStream(build: Build): void {
    const { groupName, streamName } = build.logs ?? {};
    if (groupName && streamName) this.log.useStream(groupName, streamName);
    if (build.logs?.cloudWatchLogs?.status === 'DISABLED') this.log.disabled(build.logs.deepLink);
  }

  private aborted(): Build {
    // The caller decides what to do with a build still running (follow/builds.ts stops it).
    this.log.abort();
    return this.build ?? { id: this.buildId };
  }
}
