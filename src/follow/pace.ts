/**
 * The follower's pace: how long to wait before the next poll, from whether lines flow, the log shows the end,
 * or polls fail. Its state (silent steps, failed and throttled polls) is its own; the follower asks it.
 */
import type { Output } from '../shared/console';
import { AwsStepError, errorName, isThrottling, isTransient } from '../shared/errors';

/**
 * The pace of the loop (ms). The budget is account-wide (GetLogEvents allows 10 requests a second per
 * account and region): at most 30 requests a build-minute while lines flow and 10 while the build is
 * silent. A read of several pages (a loud build: 10,000 lines or 1 MB a page) waits 3 s for each, and so does
 * the final drain between every four: 20 pages a minute and the status, about 3,300 lines a second.
 * With Live Tail the log costs one request a session, and the status and one read of the log follow
 * every 15 s (every minute when silent). Polling reads the log every 2.5 s while lines flow and slows to every 8 s
 * when silent. Once the log shows the last phase ended, the status is read every second until done.
 */
export const Pace = {
  flowing: 2_500,
  /** A read of several pages (a loud build's backlog) waits this long a page, status reads included in the budget. */
  page: 3_000,
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

/** Polls that failed in a row (each after the SDK's own retries, see aws/clients.ts) before giving up. */
export const MAX_FAILED_POLLS = 8;

/** The waits between polls, and what a failed poll means for them. */
export class Pacer {
  /** When lines last arrived. */
  private linesAt: number;
  private silentStep = 0;
  /** The wait after the last read that brought lines. */
  private flowWait: number = Pace.flowing;
  private failed = 0;
  /** The wait after the last throttled poll; 0 when the last poll was not throttled. */
  private throttled = 0;

  constructor(
    private readonly out: Output,
    /** The step an AwsStepError names when following gives up. */
    private readonly step: string,
    now: number,
  ) {
    this.linesAt = now;
  }

  /** How often the status is due at `t`: every second once the log shows the end, less often while it is silent. */
  statusEvery(t: number, ending: boolean): number {
    // Silent once a poll past the one after the last lines found nothing (that wait is longer after a long read).
    const silent = t - this.linesAt > this.flowWait + Pace.flowing;
    return ending ? Pace.ending * 0.9 : silent ? Pace.silentStatus : Pace.status;
  }

  /** Lines arrived at `t` (from Live Tail: the pace stays Pace.tail). */
  linesArrived(t: number): void {
    this.linesAt = t;
  }

  /**
   * A read of `calls` pages brought lines at `t`: the wait while they flow; Pace.page a page after a read of several,
   * so that a loud build's backlog keeps to the budget too.
   */
  flowing(t: number, calls = 1): number {
    this.linesAt = t;
    this.silentStep = 0;
    this.flowWait = calls > 1 ? Pace.page * calls : Pace.flowing;
    return this.flowWait;
  }

  /** Nothing new: the next of the silent steps. */
  silent(): number {
    const i = Math.min(this.silentStep, Pace.silent.length - 1);
    this.silentStep++;
    return Pace.silent[i] as number;
  }

  /** A poll succeeded: failures so far are forgotten, and the end of throttling is said once. */
  succeeded(): void {
    if (this.throttled) this.out.info('AWS stopped throttling: following at the usual pace again.');
    this.failed = 0;
    this.throttled = 0;
  }

  /**
   * A poll failed although the SDK retried it. Throttling only slows the loop: the build runs on, and
   * giving up would leave it unwatched. Other transient failures may repeat MAX_FAILED_POLLS times;
   * anything else ends following at once. Returns the wait before the next poll, or throws.
   */
  failedPoll(e: unknown): number {
    if (e instanceof AwsStepError) throw e;
    const reason = `${errorName(e) ?? 'Error'}: ${e instanceof Error ? e.message : String(e)}`;
    if (isThrottling(e)) {
      if (!this.throttled) this.out.warn(`AWS is throttling the requests that follow the build (${reason}): following more slowly.`);
      this.throttled = Math.min(Math.max(this.throttled * 2, Pace.silent.at(-1) as number), Pace.throttled);
      return this.throttled;
    }
    if (isTransient(e) && ++this.failed < MAX_FAILED_POLLS) {
      if (this.failed === 1) this.out.warn(`Following the build failed (${reason}); trying again.`);
      return Pace.silent.at(-1) as number;
    }
    const hint = errorName(e) === 'AccessDeniedException' ? 'The role needs codebuild:BatchGetBuilds on the project.'
      : isTransient(e) ? `AWS or the network failed ${MAX_FAILED_POLLS} polls in a row.` : undefined;
    throw new AwsStepError(this.step, e, hint);
  }
}
