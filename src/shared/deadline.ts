/**
 * A deadline for one call: `fn` gets a signal that aborts when `ms` pass or `outer` aborts, whichever comes first.
 * Each call has its own timer: on Node 20, AbortSignal.any over AbortSignal.timeout stops firing once garbage
 * collection has run (a GitLab status request that never answered once blocked the job-status watch for good).
 */
export async function withDeadline<T>(ms: number, outer: AbortSignal | undefined, what: string, fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const timeout = Object.assign(new Error(`${what}: no answer within ${formatSeconds(ms)}`), { name: 'TimeoutError' });
  const timer = setTimeout(() => controller.abort(timeout), ms);
  const onAbort = () => controller.abort(outer?.reason);
  if (outer?.aborted) onAbort();
  else outer?.addEventListener('abort', onAbort, { once: true });
  try {
    return await fn(controller.signal);
  } catch (e) {
    // The SDK answers an abort with its own AbortError: the timeout says which call and how long.
    throw controller.signal.reason === timeout ? timeout : e;
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener('abort', onAbort);
  }
}

function formatSeconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}
