/** Faults injected through /_fake/faults. `operation` is an API name (StartBuild, GetLogEvents, ...) or `*`. */
export type Fault =
  | { kind: 'throttle'; operation: string; count?: number }
  | { kind: 'status'; operation: string; status: 500 | 503; count?: number }
  | { kind: 'reset'; operation: string; count?: number }
  /** AccessDeniedException, as IAM answers a call the caller's policies do not allow. */
  | { kind: 'denied'; operation: string; count?: number }
  | { kind: 'delay'; operation: string; ms: number; count?: number }
  | { kind: 'quota'; operation: string; rps: number }
  /**
   * The next `count` builds started spend `ms` in PROVISIONING before their log stream begins, as CodeBuild's on-demand
   * hosts take seconds (the fake's phases otherwise last phaseDelayMs). Its operation is StartBuild.
   */
  | { kind: 'provisioning'; operation: 'StartBuild'; ms: number; count?: number };

/** What to do with one call, decided before it is handled. */
export interface Verdict {
  delayMs: number;
  action?: 'throttle' | 'reset' | 'denied' | 500 | 503;
}

interface Armed {
  fault: Fault;
  remaining: number;
}

export class Faults {
  private armed: Armed[] = [];
  private readonly recent = new Map<string, number[]>();
  private readonly calls = new Map<string, number>();
  /** Calls refused for a quota, by operation and error code (a `quota` or `throttle` fault, Live Tail's session limit). */
  private readonly refused = new Map<string, Map<string, number>>();

  add(fault: Fault): void {
    validateFault(fault);
    this.armed.push({ fault, remaining: fault.kind === 'quota' ? Infinity : (fault.count ?? 1) });
  }

  clear(): void {
    this.armed = [];
    this.recent.clear();
  }

  callCounts(): Record<string, number> {
    return Object.fromEntries(this.calls);
  }

  resetCalls(): void {
    this.calls.clear();
    this.refused.clear();
  }

  /** Counts a call answered with a quota's refusal (ThrottlingException, LimitExceededException, ...). */
  countRefusal(operation: string, code: string): void {
    const byCode = this.refused.get(operation) ?? new Map<string, number>();
    byCode.set(code, (byCode.get(code) ?? 0) + 1);
    this.refused.set(operation, byCode);
  }

  refusalCounts(): Record<string, Record<string, number>> {
    return Object.fromEntries([...this.refused].map(([op, byCode]) => [op, Object.fromEntries(byCode)]));
  }

  /** How long a build started now spends in PROVISIONING, when a `provisioning` fault says (consuming it). */
  takeProvisioning(): number | undefined {
    const a = this.armed.find((x) => x.fault.kind === 'provisioning' && x.remaining > 0);
    if (!a || a.fault.kind !== 'provisioning') return undefined;
    a.remaining--;
    this.armed = this.armed.filter((x) => x.remaining > 0);
    return a.fault.ms;
  }

  /**
   * Counts the call and consumes the faults that apply to it: every matching delay, then one failure. A quota
   * admits `rps` calls in any second; like AWS's token buckets, a call it refuses does not count against it.
   */
  onCall(operation: string, now = Date.now()): Verdict {
    this.calls.set(operation, (this.calls.get(operation) ?? 0) + 1);
    const window = (this.recent.get(operation) ?? []).filter((t) => t > now - 1000);
    this.recent.set(operation, window);

    const verdict: Verdict = { delayMs: 0 };
    for (const a of this.armed) {
      if (a.remaining <= 0 || a.fault.kind === 'provisioning' || (a.fault.operation !== '*' && a.fault.operation !== operation)) continue;
      const f = a.fault;
      if (f.kind === 'delay') {
        verdict.delayMs += f.ms;
        a.remaining--;
      } else if (verdict.action === undefined) {
        if (f.kind === 'quota') {
          if (window.length >= f.rps) verdict.action = 'throttle';
          continue;
        }
        verdict.action = f.kind === 'status' ? f.status : f.kind;
        a.remaining--;
      }
    }
    this.armed = this.armed.filter((a) => a.remaining > 0);
    if (verdict.action !== 'throttle') window.push(now);
    return verdict;
  }
}

function validateFault(f: Fault): void {
  const ok =
    typeof f.operation === 'string' &&
    f.operation.length > 0 &&
    ((f.kind === 'throttle' || f.kind === 'reset' || f.kind === 'denied') ||
      (f.kind === 'status' && (f.status === 500 || f.status === 503)) ||
      (f.kind === 'delay' && Number.isFinite(f.ms) && f.ms >= 0) ||
      (f.kind === 'quota' && Number.isFinite(f.rps) && f.rps >= 0) ||
      (f.kind === 'provisioning' && f.operation === 'StartBuild' && Number.isFinite(f.ms) && f.ms >= 0));
  const count = 'count' in f ? f.count : undefined;
  if (!ok || (count !== undefined && !(Number.isInteger(count) && count > 0))) {
    throw new Error(
      `invalid fault ${JSON.stringify(f)}: expected {kind:"throttle"|"reset"|"denied", operation, count?} | {kind:"status", status:500|503, operation, count?} | ` +
        '{kind:"delay", ms, operation, count?} | {kind:"quota", rps, operation} | {kind:"provisioning", operation:"StartBuild", ms, count?}',
    );
  }
}
