import type { Output } from '../shared/console';
import type { GitLabJob } from '../inputs/settings';
import { withDeadline } from '../shared/deadline';
import { connectionFailure, ExitCode } from '../shared/errors';
import { network } from '../shared/network';

export interface CancelDeps {
  out: Output;
  job: GitLabJob;
  /** Interval between job-status checks; default 10 s. */
  pollMs?: number;
  /** How long one status request may take; default 10 s. */
  requestTimeoutMs?: number;
  /** How long the job may go on after a signal; default SIGNAL_EXIT_MS. */
  signalExitMs?: number;
  /** Ends the process when that time has passed; default process.exit. */
  exit?: (code: number) => void;
}

/**
 * After SIGTERM or SIGINT the job has this long (ms) to stop its builds and exit, whatever hangs; then it exits
 * anyway. GitLab Runner kills the job soon after its signal, and its after_script's `stop` stops what is left.
 */
export const SIGNAL_EXIT_MS = 4_500;

export interface CancellationWatch {
  /** Resolves with a printable reason once the job should stop; never rejects. */
  cancelled: Promise<string>;
  /** Removes the signal handlers and stops polling. */
  dispose(): void;
}

const CANCELLED = new Set(['canceling', 'canceled']);
/** The job token stops working when the job ends, whoever ended it. */
const TOKEN_GONE = new Set([401, 403, 404]);

/**
 * Notices that the GitLab job is being cancelled: SIGTERM/SIGINT, or the job's own status (GET
 * $CI_API_V4_URL/job with CI_JOB_TOKEN) turning canceling/canceled, or the token being revoked. After it
 * resolves, a second signal has its default effect again, so an impatient Ctrl-C still ends the process.
 */
export function watchCancellation({ out, job, pollMs = 10_000, requestTimeoutMs = 10_000, signalExitMs = SIGNAL_EXIT_MS, exit = (code) => process.exit(code) }: CancelDeps): CancellationWatch {
  let resolve!: (reason: string) => void;
  const cancelled = new Promise<string>((r) => (resolve = r));
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  let inflight: AbortController | undefined;

  const onSignal = (name: string) => () => {
    finish(`received ${name}`);
    // Not cleared by dispose(): what follows the signal (stopping the builds, the reports) must not hang either.
    setTimeout(() => {
      out.error(`The job did not end within ${signalExitMs / 1000} s of ${name}: exiting now; the template's after_script stops a build still running.`);
      exit(ExitCode.BuildFailed);
    }, signalExitMs).unref();
  };
  const onSigterm = onSignal('SIGTERM');
  const onSigint = onSignal('SIGINT');
  process.on('SIGTERM', onSigterm);
  process.on('SIGINT', onSigint);

  function stop(): void {
    done = true;
    process.off('SIGTERM', onSigterm);
    process.off('SIGINT', onSigint);
    clearTimeout(timer);
    inflight?.abort();
  }
  function finish(reason: string): void {
    if (done) return;
    stop();
    resolve(reason);
  }

  if (job.apiUrl && job.jobToken) {
    const url = `${job.apiUrl.replace(/\/+$/, '')}/job`;
    const token = job.jobToken;
    let warned = false;
    const poll = async () => {
      try {
        const status = await jobStatus(url, token, requestTimeoutMs, (c) => (inflight = c));
        if (CANCELLED.has(status)) return finish(`the GitLab job is ${status}`);
      } catch (e) {
        if (done) return;
        const status = e instanceof HttpStatusError ? e.status : undefined;
        if (status !== undefined && TOKEN_GONE.has(status)) return finish(`GitLab rejected the job token (HTTP ${status}): the job has ended`);
        if (!warned) {
          warned = true;
          // Never print the error object: its request carries the job token.
          out.warn(`Cannot check the GitLab job status (${status ? `HTTP ${status}` : (connectionFailure(e) ?? (e as Error).name)}); will keep trying`);
        }
      }
      schedule();
    };
    const schedule = () => {
      if (done) return;
      timer = setTimeout(() => void poll(), pollMs);
      timer.unref();
    };
    schedule();
  } else {
    out.info('Not watching the GitLab job status: CI_API_V4_URL or CI_JOB_TOKEN is not set');
  }

  return { cancelled, dispose: stop };
}

class HttpStatusError extends Error {
  override name = 'HttpStatusError';
  constructor(readonly status: number) {
    super(`HTTP ${status}`);
  }
}

/** The job's status from GET /job, within `timeoutMs`; `track` gets the request's controller, so dispose() can abort it. */
async function jobStatus(url: string, token: string, timeoutMs: number, track: (c: AbortController) => void): Promise<string> {
  const controller = new AbortController();
  track(controller);
  return withDeadline(timeoutMs, controller.signal, 'GET /job', async (signal) => {
    const res = await network().fetch.gitlab(url, { headers: { 'JOB-TOKEN': token }, signal });
    if (!res.ok) {
      await res.body?.cancel();
      throw new HttpStatusError(res.status);
    }
    const body = (await res.json()) as { status?: unknown };
    return String(body.status ?? '');
  });
}
