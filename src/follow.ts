import { setTimeout as delay } from 'node:timers/promises';
import { BatchGetBuildsCommand, type Build, type CodeBuildClient } from '@aws-sdk/client-codebuild';
import type { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import type { Output } from './console';
import { AwsStepError, errorName, isThrottling, isTransient } from './errors';
import { JobLog } from './job-log';
import { EventSet, LiveTail, logGroupArn } from './live-tail';
import { LogReader } from './log-reader';
import { PhaseRenderer, queueSummary, type LogEvent } from './phases';

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
 * silent. With Live Tail the log costs one request a session and only the status is read (every 15 s, or
 * every minute when silent). Polling reads the log every 2.5 s while lines flow and slows to every 8 s
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

interface FollowState {
  build: Build | undefined;
  reader: LogReader | undefined;
  tail: LiveTail | undefined;
  tailTried: boolean;
  /** The lines from before the session started were read. */
  caughtUp: boolean;
  /** Lines the reader printed that Live Tail may deliver again, and lines Live Tail printed that a read will. */
  read: EventSet;
  tailed: EventSet;
  logsOff: boolean;
  statusAt: number;
  /** When a read last returned lines. */
  linesAt: number;
  silentStep: number;
  failed: number;
  /** The wait after the last throttled poll; 0 when the last poll was not throttled. */
  throttled: number;
  missing: number;
}

/**
 * Follows a CodeBuild build until it completes: each phase in a collapsible section holding its log
 * lines, stamped with CodeBuild's own times, and the log drained to its end. Returns the final Build, or
 * the last one seen (not complete) as soon as `signal` aborts. Throws AwsStepError when it cannot go on;
 * the build then still runs, and the caller decides what to do with it.
 */
export async function followBuild(deps: FollowDeps, buildId: string, signal?: AbortSignal): Promise<Build> {
  const sleep = deps.sleep ?? ((ms, s) => delay(ms, undefined, s ? { signal: s } : {}));
  const now = deps.now ?? Date.now;
  const renderer = new PhaseRenderer();
  const jobLog = new JobLog(deps.out, { ...(deps.logFile && { file: deps.logFile }), ...(deps.jobLogLimit && { limit: deps.jobLogLimit }) });
  const st: FollowState = {
    build: undefined, reader: undefined, tail: undefined, tailTried: false, caughtUp: false, read: new EventSet(), tailed: new EventSet(), logsOff: false, statusAt: -Infinity, linesAt: now(),
    silentStep: 0, failed: 0, throttled: 0, missing: 0,
  };
  const step = `Following CodeBuild build ${buildId}`;
  const opts = signal ? { abortSignal: signal } : {};

  const readStatus = async (): Promise<Build | undefined> => {
    const res = await deps.codebuild.send(new BatchGetBuildsCommand({ ids: [buildId] }), opts);
    st.statusAt = now();
    const build = res.builds?.[0];
    if (!build) {
      if (++st.missing >= MAX_MISSING) {
        throw new AwsStepError(step, new Error('BatchGetBuilds no longer finds the build'), 'The build was deleted, or the credentials or region changed while following it.');
      }
      return undefined;
    }
    st.missing = 0;
    st.build = build;
    noteStream(st, deps, build);
    return build;
  };
  /** Prints the events no other source printed; returns how many. */
  const show = (events: LogEvent[], from: 'tail' | 'read'): number => {
    const fresh = events.filter((e) => !(from === 'tail' ? st.read : st.tailed).remove(e));
    // Only while a session runs may the other source deliver the same lines again.
    if (st.tail) for (const e of fresh) (from === 'tail' ? st.tailed : st.read).add(e);
    jobLog.record(fresh);
    jobLog.show(renderer.render(fresh, st.build?.phases ?? []));
    return fresh.length;
  };
  const read = async (drain: boolean): Promise<number> => {
    if (!st.reader) return 0;
    const { events } = await st.reader.read({ drain, maxPages: drain ? Infinity : 20, ...(signal && { signal }) });
    if (st.reader.denied && !st.logsOff) {
      st.logsOff = true;
      deps.out.warn(`Cannot read the build log (AccessDeniedException): the role needs logs:GetLogEvents on log group ${st.reader.stream.group}. Following the build status only.`);
    }
    return show(events, 'read');
  };

  /** Tried once: a Live Tail session on the build's stream; true when it runs. */
  const startTail = async (): Promise<boolean> => {
    st.tailTried = true;
    const group = logGroupArn(st.build?.logs?.cloudWatchLogsArn);
    if (!group || !st.reader) return false;
    try {
      st.tail = await LiveTail.start(deps.logs, group, st.reader.stream.name);
      return true;
    } catch (e) {
      deps.out.info(`Following the log by polling: StartLiveTail failed (${errorName(e) ?? 'Error'}); the role needs logs:StartLiveTail to follow it with fewer requests.`);
      return false;
    }
  };

  /** One poll; returns how long to wait before the next, or undefined once the build is complete and drained. */
  const poll = async (): Promise<number | undefined> => {
    const t = now();
    const silent = t - st.linesAt > Pace.flowing * 2;
    const every = renderer.ending ? Pace.ending * 0.9 : silent ? Pace.silentStatus : Pace.status;
    const statusDue = !st.reader || st.logsOff || t - st.statusAt >= every;
    if (st.tail && (st.tail.ended || st.tail.sampled)) {
      deps.out.info(`Following the log by polling from here: Live Tail ${st.tail.sampled ? 'sampled the lines (over 500 a second)' : `ended (${st.tail.reason ?? 'closed'})`}.`);
      st.tail.stop();
      st.tail = undefined;
    }
    if (st.tail) {
      // First what the log held before the session started; the session's lines wait in its queue.
      if (!st.caughtUp) {
        await read(false);
        st.caughtUp = true;
      }
      const wasEnding = renderer.ending;
      if (show(st.tail.take(), 'tail') > 0) st.linesAt = now();
      // The lines just shown tell the last phase ended: ask for the status now.
      if ((statusDue || renderer.ending !== wasEnding) && (await finished())) return undefined;
      return Pace.tail;
    }
    if (statusDue && (await finished())) return undefined;
    // While it ends there is nothing to wait for but the status; the final drain reads the last lines.
    if (renderer.ending) return Pace.ending;
    if (!st.reader || st.logsOff) return silentPace(st);
    if (!st.tailTried && (await startTail())) return poll();
    const lines = await read(false);
    // The lines just read show the last phase ended: ask for the status now rather than a second later.
    if (renderer.ending) return (await finished()) ? undefined : Pace.ending;
    if (lines === 0) return silentPace(st);
    st.linesAt = now();
    st.silentStep = 0;
    return Pace.flowing;
  };

  /** Reads the status; once the build is complete, drains its log and prints the end. */
  const finished = async (): Promise<boolean> => {
    const build = await readStatus();
    if (!build?.buildComplete) return false;
    st.tail?.stop();
    st.tail = undefined;
    await read(true);
    jobLog.show(renderer.finish(build.phases ?? [], build.buildStatus));
    const summary = queueSummary(build.phases ?? [], build.endTime);
    if (summary) deps.out.info(summary);
    return true;
  };

  const aborted = (): Build => {
    // The caller decides what to do with a build still running (main.ts stops it).
    st.tail?.stop();
    jobLog.show(renderer.abort());
    return st.build ?? { id: buildId };
  };

  try {
    for (;;) {
      if (signal?.aborted) return aborted();
      let wait: number;
      try {
        const next = await poll();
        if (next === undefined) return st.build as Build;
        if (st.throttled) deps.out.info('AWS stopped throttling: following at the usual pace again.');
        st.failed = 0;
        st.throttled = 0;
        wait = next;
      } catch (e) {
        if (signal?.aborted) return aborted();
        wait = failedPoll(st, deps.out, step, e);
      }
      try {
        await sleep(wait, signal);
      } catch (e) {
        if (signal?.aborted) return aborted();
        throw e;
      }
    }
  } finally {
    st.tail?.stop();
  }
}

function silentPace(st: FollowState): number {
  const i = Math.min(st.silentStep, Pace.silent.length - 1);
  st.silentStep++;
  return Pace.silent[i] as number;
}

function noteStream(st: FollowState, deps: FollowDeps, build: Build): void {
  const { groupName, streamName } = build.logs ?? {};
  if (!st.reader && groupName && streamName) st.reader = new LogReader(deps.logs, { group: groupName, name: streamName });
  if (!st.logsOff && build.logs?.cloudWatchLogs?.status === 'DISABLED') {
    st.logsOff = true;
    deps.out.warn(`CloudWatch Logs are disabled for this CodeBuild project, so the build log is not shown here${build.logs.deepLink ? `: ${build.logs.deepLink}` : ''}`);
  }
}

/**
 * A poll failed although the SDK retried it. Throttling only slows the loop: the build runs on, and
 * giving up would leave it unwatched. Other transient failures may repeat MAX_FAILED_POLLS times; anything
 * else ends following at once.
 */
function failedPoll(st: FollowState, out: Output, step: string, e: unknown): number {
  if (e instanceof AwsStepError) throw e;
  const reason = `${errorName(e) ?? 'Error'}: ${e instanceof Error ? e.message : String(e)}`;
  if (isThrottling(e)) {
    if (!st.throttled) out.warn(`AWS is throttling the requests that follow the build (${reason}): following more slowly.`);
    st.throttled = Math.min(Math.max(st.throttled * 2, Pace.silent.at(-1) as number), Pace.throttled);
    return st.throttled;
  }
  if (isTransient(e) && ++st.failed < MAX_FAILED_POLLS) {
    if (st.failed === 1) out.warn(`Following the build failed (${reason}); trying again.`);
    return Pace.silent.at(-1) as number;
  }
  const hint = errorName(e) === 'AccessDeniedException' ? 'The role needs codebuild:BatchGetBuilds on the project.'
    : isTransient(e) ? `AWS or the network failed ${MAX_FAILED_POLLS} polls in a row.` : undefined;
  throw new AwsStepError(step, e, hint);
}
