import { setTimeout as delay } from 'node:timers/promises';
import { BatchGetBuildsCommand, type Build, type BuildPhase, type CodeBuildClient } from '@aws-sdk/client-codebuild';
import { GetLogEventsCommand, type CloudWatchLogsClient, type OutputLogEvent } from '@aws-sdk/client-cloudwatch-logs';
import type { Output } from './console';
import { AwsStepError } from './errors';

export interface FollowDeps {
  codebuild: CodeBuildClient;
  logs: CloudWatchLogsClient;
  out: Output;
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  now?: () => number;
  /** For back-off jitter; returns [0, 1). */
  random?: () => number;
}

/** Poll intervals (ms). */
export const Intervals = {
  /** While log lines flow or the build is about to finish. */
  quick: 1_000,
  /** Ceiling of the idle back-off. */
  idle: 10_000,
  /** Ceiling of the back-off after throttling or transient errors. */
  retry: 30_000,
} as const;

/** Consecutive failures tolerated before giving up (the build itself keeps running). */
const MAX_TRANSIENT = 6;
const MAX_THROTTLED = 20;
/** BatchGetBuilds answers "not found" this many times in a row: the build is gone. */
const MAX_MISSING = 3;
const PAGES_PER_TICK = 20;
/** A phase's trailing lines may reach CloudWatch a little after the phase ends. */
const PHASE_GRACE_MS = 5_000;
const NEAR_END = new Set(['POST_BUILD', 'UPLOAD_ARTIFACTS', 'FINALIZING', 'COMPLETED']);
const EXPANDED = new Set(['INSTALL', 'PRE_BUILD', 'BUILD', 'POST_BUILD']);
const THROTTLING = new Set(['ThrottlingException', 'ThrottledException', 'TooManyRequestsException']);
const TRANSIENT_NAMES = new Set(['TimeoutError', 'RequestTimeout', 'RequestTimeoutException', 'InternalFailure', 'ServiceUnavailable', 'ServiceUnavailableException', 'InternalServerError']);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH']);

interface SdkError {
  name?: string;
  code?: string;
  $retryable?: { throttling?: boolean };
  $metadata?: { httpStatusCode?: number };
}

export function isThrottling(e: unknown): boolean {
  const err = e as SdkError | undefined;
  return THROTTLING.has(err?.name ?? '') || err?.$retryable?.throttling === true || err?.$metadata?.httpStatusCode === 429;
}

export function isTransient(e: unknown): boolean {
  const err = e as SdkError | undefined;
  const status = err?.$metadata?.httpStatusCode ?? 0;
  return Boolean(err?.$retryable) || status >= 500 || TRANSIENT_NAMES.has(err?.name ?? '') || NETWORK_CODES.has(err?.code ?? '');
}

/** Everything the follow loop knows, in one place. */
interface FollowState {
  buildId: string;
  build: Build | undefined;
  stream: { group: string; name: string } | undefined;
  /** nextForwardToken of the last page read; undefined before the first page. */
  token: string | undefined;
  /** The last read reached the current end of the stream. */
  atEnd: boolean;
  /** Events read but not printed yet: they belong to a phase whose section is not open yet. */
  pending: OutputLogEvent[];
  /** Index (in printable phases) of the phase being shown or next to show. */
  phase: number;
  open: boolean;
  /** Local time at which the shown phase was first seen ended. */
  endSeenAt: number | undefined;
  interval: number;
  transient: number;
  throttled: number;
  missing: number;
  logsUnavailable: boolean;
}

/**
 * Follows a CodeBuild build until it completes: prints each phase in a collapsible section with its
 * log lines and duration, and drains the CloudWatch log to its end. Returns the final Build, or the
 * last one seen (not complete) as soon as `signal` aborts. Throws AwsStepError when AWS keeps failing.
 */
export async function followBuild(deps: FollowDeps, buildId: string, signal?: AbortSignal): Promise<Build> {
  const sleep = deps.sleep ?? ((ms, s) => delay(ms, undefined, s ? { signal: s } : {}));
  const st: FollowState = {
    buildId, build: undefined, stream: undefined, token: undefined, atEnd: false, pending: [],
    phase: 0, open: false, endSeenAt: undefined, interval: Intervals.quick,
    transient: 0, throttled: 0, missing: 0, logsUnavailable: false,
  };
  const aborted = (): Build => {
    // The caller decides what to do with a build still running (main.ts stops it).
    printEvents(st, deps.out, Infinity);
    if (st.open) deps.out.sectionEnd(phaseId(st, st.build?.phases?.filter(printable)[st.phase]));
    return st.build ?? { id: buildId };
  };
  for (;;) {
    if (signal?.aborted) return aborted();
    let wait: number;
    try {
      if (await tick(st, deps, signal)) return st.build as Build;
      st.transient = 0;
      st.throttled = 0;
      wait = st.interval;
    } catch (e) {
      if (signal?.aborted) return aborted();
      wait = retryDelay(st, e, deps.random ?? Math.random);
    }
    try {
      await sleep(wait, signal);
    } catch (e) {
      if (signal?.aborted) return aborted();
      throw e;
    }
  }
}

function printable(p: BuildPhase): boolean {
  return Boolean(p.phaseType) && p.phaseType !== 'COMPLETED';
}

function phaseId(st: FollowState, p: BuildPhase | undefined): string {
  return `codebuild_phase_${st.phase}_${(p?.phaseType ?? '').toLowerCase()}`;
}

/** One poll: returns true once the build is complete and its log drained. */
async function tick(st: FollowState, deps: FollowDeps, signal: AbortSignal | undefined): Promise<boolean> {
  const res = await deps.codebuild.send(new BatchGetBuildsCommand({ ids: [st.buildId] }), opts(signal));
  const build = res.builds?.[0];
  if (!build) {
    if (++st.missing >= MAX_MISSING) {
      throw new AwsStepError(`Following CodeBuild build ${st.buildId}`, new Error('BatchGetBuilds no longer finds the build'),
        'The build was deleted, or the credentials or region changed while following it.');
    }
    return false;
  }
  st.missing = 0;
  st.build = build;
  noteStream(st, deps.out, build);
  if (build.buildComplete) {
    await readLog(st, deps, Infinity, signal);
    showPhases(st, deps, true);
    return true;
  }
  const read = await readLog(st, deps, PAGES_PER_TICK, signal);
  showPhases(st, deps, false);
  const quick = read > 0 || !st.atEnd || NEAR_END.has(build.currentPhase ?? '');
  st.interval = quick ? Intervals.quick : Math.min(st.interval * 2, Intervals.idle);
  return false;
}

function opts(signal: AbortSignal | undefined) {
  return signal ? { abortSignal: signal } : {};
}

function noteStream(st: FollowState, out: Output, build: Build): void {
  const { groupName, streamName } = build.logs ?? {};
  if (!st.stream && groupName && streamName) st.stream = { group: groupName, name: streamName };
  if (!st.logsUnavailable && build.logs?.cloudWatchLogs?.status === 'DISABLED') {
    st.logsUnavailable = true;
    out.warn(`CloudWatch Logs are disabled for this CodeBuild project, so the build log is not shown here${build.logs.deepLink ? `: ${build.logs.deepLink}` : ''}`);
  }
}

/** Reads up to `maxPages` pages after the saved token into `pending`; returns the number of events. */
async function readLog(st: FollowState, deps: FollowDeps, maxPages: number, signal: AbortSignal | undefined): Promise<number> {
  st.atEnd = true;
  if (!st.stream || st.logsUnavailable) return 0;
  let count = 0;
  for (let page = 0; page < maxPages; page++) {
    let res;
    try {
      res = await deps.logs.send(new GetLogEventsCommand({
        logGroupName: st.stream.group, logStreamName: st.stream.name, startFromHead: true,
        ...(st.token && { nextToken: st.token }),
      }), opts(signal));
    } catch (e) {
      const name = (e as SdkError).name;
      // The stream is created a little after CodeBuild names it.
      if (name === 'ResourceNotFoundException') return count;
      if (name === 'AccessDeniedException') {
        st.logsUnavailable = true;
        deps.out.warn(`Cannot read the build log (${name}): the role needs logs:GetLogEvents on log group ${st.stream.group}. Following the build status only.`);
        return count;
      }
      throw e;
    }
    const events = res.events ?? [];
    st.pending.push(...events);
    count += events.length;
    // Pages can be empty before the end; the end is where the forward token stops changing.
    const next = res.nextForwardToken;
    const repeated = !next || next === st.token;
    if (next) st.token = next;
    if (repeated) return count;
  }
  st.atEnd = false;
  return count;
}

/** Opens and closes phase sections, printing each pending event inside the phase it belongs to. */
function showPhases(st: FollowState, deps: FollowDeps, final: boolean): void {
  const { out } = deps;
  const now = deps.now ?? Date.now;
  const phases = (st.build?.phases ?? []).filter(printable);
  while (st.phase < phases.length) {
    const p = phases[st.phase] as BuildPhase;
    const id = phaseId(st, p);
    if (!st.open) {
      out.sectionStart(id, `Phase ${p.phaseType}`, !EXPANDED.has(p.phaseType ?? ''));
      st.open = true;
      st.endSeenAt = undefined;
    }
    const last = st.phase === phases.length - 1;
    const end = p.endTime?.getTime();
    if (end === undefined && !final) {
      printEvents(st, out, Infinity);
      return;
    }
    printEvents(st, out, final && last ? Infinity : (end ?? Infinity));
    st.endSeenAt ??= now();
    // Close once lines past the phase end arrived, or the log is quiet past a grace period.
    const closable = final || st.pending.length > 0 || !st.stream || st.logsUnavailable ||
      (st.atEnd && now() - st.endSeenAt >= PHASE_GRACE_MS);
    if (!closable) return;
    closePhase(out, id, p, st.build);
    st.phase++;
    st.open = false;
  }
  if (final) printEvents(st, out, Infinity);
}

/** Prints pending events stamped up to `until` (inclusive: a fast phase starts and ends in the same millisecond). */
function printEvents(st: FollowState, out: Output, until: number): void {
  let n = 0;
  for (const e of st.pending) {
    if ((e.timestamp ?? 0) > until) break;
    for (const line of (e.message ?? '').replace(/\r?\n$/, '').split('\n')) out.info(line);
    n++;
  }
  st.pending.splice(0, n);
}

function closePhase(out: Output, id: string, p: BuildPhase, build: Build | undefined): void {
  const status = p.phaseStatus ?? (build?.buildComplete ? build.buildStatus : undefined) ?? 'ENDED';
  const seconds = p.durationInSeconds ??
    (p.startTime && p.endTime ? Math.round((p.endTime.getTime() - p.startTime.getTime()) / 1000) : undefined);
  out.info(`${p.phaseType} ${status}${seconds === undefined ? '' : ` (${formatDuration(seconds)})`}`);
  out.sectionEnd(id);
  if (status !== 'SUCCEEDED' && status !== 'ENDED') out.error(phaseFailure(p, status));
}

/** `Phase BUILD FAILED: COMMAND_EXECUTION_ERROR: …`: the phase, its status and CodeBuild's reasons. */
export function phaseFailure(p: BuildPhase, status = p.phaseStatus ?? 'ENDED'): string {
  const why = (p.contexts ?? []).map((c) => [c.statusCode, c.message].filter(Boolean).join(': ')).filter(Boolean);
  return `Phase ${p.phaseType} ${status}${why.length ? `: ${why.join('; ')}` : ''}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** Back-off before retrying a failed poll; throws when the failure is not worth retrying. */
function retryDelay(st: FollowState, e: unknown, random: () => number): number {
  if (e instanceof AwsStepError) throw e;
  const step = `Following CodeBuild build ${st.buildId}`;
  let attempt: number;
  if (isThrottling(e)) {
    attempt = ++st.throttled;
    if (attempt > MAX_THROTTLED) throw new AwsStepError(step, e, 'AWS kept throttling the requests; the build continues in CodeBuild.');
  } else if (isTransient(e)) {
    attempt = ++st.transient;
    if (attempt > MAX_TRANSIENT) throw new AwsStepError(step, e, 'AWS or the network kept failing; the build continues in CodeBuild.');
  } else {
    const name = (e as SdkError | undefined)?.name;
    throw new AwsStepError(step, e, name === 'AccessDeniedException' ? 'The role needs codebuild:BatchGetBuilds on the project.' : undefined);
  }
  // "Equal jitter": at least half the exponential step, so retries from many jobs spread out.
  const base = Math.min(Intervals.quick * 2 ** attempt, Intervals.retry);
  return Math.round(base / 2 + (random() * base) / 2);
}
