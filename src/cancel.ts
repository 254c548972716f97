import type { Output } from './console';
import type { GitLabJob } from './settings';

export interface CancelDeps {
  out: Output;
  job: GitLabJob;
  /** Interval between job-status checks; default 10 s. */
  pollMs?: number;
}

export interface CancellationWatch {
  /** Resolves with a printable reason once the job should stop; never rejects. */
  cancelled: Promise<string>;
  /** Removes the signal handlers and stops polling. */
  dispose(): void;
}

const CANCELLED = new Set(['canceling', 'canceled']);
/** The job token stops working when the job ends, whoever ended it. */
const TOKEN_GONE = new Set([401, 403, 404]);
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * Notices that the GitLab job is being cancelled: SIGTERM/SIGINT, or the job's own status (GET /job
 * with CI_JOB_TOKEN) turning canceling/canceled, or the token being revoked. After it resolves, a second
 * signal has its default effect again, so an impatient Ctrl-C still ends the process.
 */
export function watchCancellation({ out, job, pollMs = 10_000 }: CancelDeps): CancellationWatch {
  let resolve!: (reason: string) => void;
  const cancelled = new Promise<string>((r) => (resolve = r));
  let done = false;
  let timer: NodeJS.Timeout | undefined;
  const inflight = new AbortController();

  const onSigterm = () => finish('received SIGTERM');
  const onSigint = () => finish('received SIGINT');
  process.on('SIGTERM', onSigterm);
  process.on('SIGINT', onSigint);

  function stop(): void {
    done = true;
    process.off('SIGTERM', onSigterm);
    process.off('SIGINT', onSigint);
    clearTimeout(timer);
    inflight.abort();
  }
  function finish(reason: string): void {
    if (done) return;
    stop();
    resolve(reason);
  }

  if (job.serverUrl && job.jobToken) {
    // GET /job with the job token: one request, so plain fetch (README, Development: why not gitbeaker).
    const url = `${job.serverUrl.replace(/\/+$/, '')}/api/v4/job`;
    const headers = { 'JOB-TOKEN': job.jobToken };
    let warned = false;
    const poll = async () => {
      let status: number | undefined;
      try {
        const res = await fetch(url, { headers, signal: AbortSignal.any([inflight.signal, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]) });
        status = res.status;
        if (!res.ok) throw new Error(`HTTP ${res.status}`);
        const jobStatus = String(((await res.json()) as { status?: unknown }).status ?? '');
        if (CANCELLED.has(jobStatus)) return finish(`the GitLab job is ${jobStatus}`);
      } catch (e) {
        if (done) return;
        if (status !== undefined && TOKEN_GONE.has(status)) return finish(`GitLab rejected the job token (HTTP ${status}): the job has ended`);
        if (!warned) {
          warned = true;
          // Never print the error object: its request carries the job token.
          out.warn(`Cannot check the GitLab job status (${status ? `HTTP ${status}` : (e as Error).name}); will keep trying`);
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
    out.info('Not watching the GitLab job status: CI_SERVER_URL or CI_JOB_TOKEN is not set');
  }

  return { cancelled, dispose: stop };
}
