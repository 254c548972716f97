import type { Build, BuildPhase } from '@aws-sdk/client-codebuild';

/**
 * The phase renderer: CloudWatch events and BatchGetBuilds phases in, job-log lines out. No I/O and no
 * clock: every time it prints comes from CodeBuild (phase times, or the timestamps of its own log lines).
 *
 * A line belongs to the phase CodeBuild's agent says it is in: it writes `Phase is X` or `Entering
 * phase X` when X starts, and `Phase complete: X State: S` plus `Phase context status code: C Message: M`
 * when X ends. Lines before the first marker are PROVISIONING's; lines after a phase's end and before the
 * next marker belong to the next phase (UPLOAD_ARTIFACTS has no start marker). Phases that write nothing
 * (SUBMITTED, QUEUED, FINALIZING) take one line each, from the BatchGetBuilds phases.
 */

export interface LogEvent {
  /** Epoch ms, as CloudWatch stamps it. */
  timestamp: number;
  message: string;
}

export type RenderedLine =
  | { kind: 'open'; id: string; title: string; collapsed: boolean; at: number }
  | { kind: 'close'; id: string; at: number }
  | { kind: 'line'; text: string }
  /** A phase's closing `BUILD SUCCEEDED (28s)`. */
  | { kind: 'status'; text: string }
  | { kind: 'error'; text: string };

/** CodeBuild's phase order; failures skip ahead (INSTALL failing goes to FINALIZING) but never back. */
export const PHASE_ORDER = [
  'SUBMITTED', 'QUEUED', 'PROVISIONING', 'DOWNLOAD_SOURCE', 'INSTALL', 'PRE_BUILD', 'BUILD', 'POST_BUILD',
  'UPLOAD_ARTIFACTS', 'FINALIZING',
] as const;
const EXPANDED = new Set(['INSTALL', 'PRE_BUILD', 'BUILD', 'POST_BUILD']);
/** Once one of these ends, the build itself is about to end. */
const LAST_WORK = new Set(['POST_BUILD', 'UPLOAD_ARTIFACTS', 'FINALIZING']);

// `[Container] 2025/06/04 21:56:17.116404 Entering phase INSTALL` (`[Instance]` on EC2 compute; older agents
// print whole seconds and `Success: true` instead of `State: SUCCEEDED`).
const AGENT = /^\[(?:Container|Instance)\] (?:\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d(?:\.\d+)? )?(.*)$/;
const START = /^(?:Entering phase|Phase is) ([A-Z_]+)$/;
const COMPLETE = /^Phase complete: ([A-Z_]+) (?:State: ([A-Z_]+)|Success: (true|false))/;
const CONTEXT = /^Phase context status code: ?(.*?) Message: ?(.*)$/;

type Marker =
  | { kind: 'start'; phase: string }
  | { kind: 'complete'; phase: string; status: string }
  | { kind: 'context'; code: string; message: string };

export function parseMarker(message: string): Marker | undefined {
  const text = AGENT.exec(message.replace(/\r?\n$/, ''))?.[1]?.trimEnd();
  if (text === undefined) return undefined;
  let m = START.exec(text);
  if (m) return { kind: 'start', phase: m[1] as string };
  m = COMPLETE.exec(text);
  if (m) return { kind: 'complete', phase: m[1] as string, status: m[2] ?? (m[3] === 'true' ? 'SUCCEEDED' : 'FAILED') };
  m = CONTEXT.exec(text);
  if (m) return { kind: 'context', code: (m[1] ?? '').trim(), message: (m[2] ?? '').trim() };
  return undefined;
}

interface OpenPhase {
  phase: string;
  /** When it started: CodeBuild's phase startTime, or the timestamp of the line that opened it. */
  start: number;
  /** From its `Phase complete` line, once seen. */
  status?: string;
  end?: number;
  context?: { code: string; message: string };
}

export class PhaseRenderer {
  private open: OpenPhase | undefined;
  /** Phases whose section was printed (opened and closed, or open now). */
  private readonly shown = new Set<string>();
  /** Lines after a phase's end whose phase is not known yet. */
  private between: LogEvent[] = [];
  private phases: BuildPhase[] = [];
  private lastEnded: string | undefined;
  private lastAt = 0;
  /** The log shows the build's last commands ended: its end is seconds away. */
  ending = false;

  /** The lines for `events` (in log order), given the phases BatchGetBuilds reported last. */
  render(events: LogEvent[], phases: BuildPhase[] = this.phases): RenderedLine[] {
    this.phases = phases;
    const out: RenderedLine[] = [];
    for (const e of events) this.event(e, out);
    return out;
  }

  /** The build is complete and its log drained: closes everything and adds the phases that wrote nothing. */
  finish(phases: BuildPhase[], buildStatus: string | undefined): RenderedLine[] {
    this.phases = phases;
    const out: RenderedLine[] = [];
    const remaining = this.listed().filter((p) => !this.shown.has(p));
    if (this.open) this.close(out, this.open.status ?? this.known(this.open.phase)?.phaseStatus ?? buildStatus);
    if (this.between.length > 0) {
      const owner = remaining[0] ?? this.lastEnded ?? 'FINALIZING';
      this.openPhase(out, owner, this.between[0]?.timestamp ?? this.lastAt);
      this.flushBetween(out);
      this.close(out, this.known(owner)?.phaseStatus ?? buildStatus);
    }
    for (const p of remaining) if (!this.shown.has(p)) this.oneLine(out, p);
    return out;
  }

  /** Following stopped early (the job was cancelled): close the open section where the log stopped. */
  abort(): RenderedLine[] {
    const out: RenderedLine[] = [];
    this.flushBetween(out);
    if (this.open) {
      out.push({ kind: 'close', id: sectionId(this.open.phase), at: this.lastAt });
      this.open = undefined;
    }
    return out;
  }

  private event(e: LogEvent, out: RenderedLine[]): void {
    this.lastAt = Math.max(this.lastAt, e.timestamp);
    const marker = parseMarker(e.message);
    if (marker?.kind === 'start') {
      if (this.open?.phase !== marker.phase) this.openPhase(out, marker.phase, e.timestamp);
    } else if (marker?.kind === 'complete') {
      if (this.open?.phase !== marker.phase) this.openPhase(out, marker.phase, e.timestamp);
      Object.assign(this.open as OpenPhase, { status: marker.status, end: e.timestamp });
    } else if (!this.open) {
      // No marker yet: the agent's first lines are PROVISIONING's; after a phase's end, wait for the next marker.
      if (this.lastEnded === undefined && this.shown.size === 0) this.openPhase(out, 'PROVISIONING', e.timestamp);
      else {
        this.between.push(e);
        return;
      }
    }
    this.flushBetween(out);
    pushMessage(out, e.message);
    if (marker?.kind === 'context' && this.open?.status !== undefined) {
      this.open.context = { code: marker.code, message: marker.message };
      this.close(out, this.open.status);
    }
  }

  /** Closes the open phase, prints the phases that wrote nothing before `phase`, and opens `phase`. */
  private openPhase(out: RenderedLine[], phase: string, at: number): void {
    if (this.open) this.close(out, this.open.status ?? this.known(this.open.phase)?.phaseStatus ?? 'SUCCEEDED', at);
    const rank = PHASE_ORDER.indexOf(phase as (typeof PHASE_ORDER)[number]);
    for (const p of this.listed()) {
      if (PHASE_ORDER.indexOf(p as (typeof PHASE_ORDER)[number]) < rank && !this.shown.has(p)) this.oneLine(out, p);
    }
    const start = this.known(phase)?.startTime?.getTime() ?? at;
    this.open = { phase, start };
    this.shown.add(phase);
    out.push({ kind: 'open', id: sectionId(phase), title: `Phase ${phase}`, collapsed: !EXPANDED.has(phase), at: start });
  }

  private close(out: RenderedLine[], status: string | undefined, nextStart?: number): void {
    const open = this.open as OpenPhase;
    const known = this.known(open.phase);
    const end = known?.endTime?.getTime() ?? open.end ?? nextStart ?? this.lastAt;
    const state = status ?? 'ENDED';
    out.push({ kind: 'status', text: `${open.phase} ${state} (${formatDuration(seconds(known, open.start, end))})` });
    out.push({ kind: 'close', id: sectionId(open.phase), at: end });
    const contexts = open.context ? [{ statusCode: open.context.code, message: open.context.message }] : known?.contexts;
    if (state !== 'SUCCEEDED' && state !== 'ENDED') out.push({ kind: 'error', text: phaseFailure({ phaseType: open.phase, contexts }, state) });
    this.lastEnded = open.phase;
    // A failed INSTALL or PRE_BUILD goes straight to FINALIZING; a failed BUILD still runs POST_BUILD.
    if (LAST_WORK.has(open.phase) || (state !== 'SUCCEEDED' && open.phase !== 'BUILD')) this.ending = true;
    this.open = undefined;
  }

  /** A phase without output: one collapsed line that carries its status and CodeBuild's times. */
  private oneLine(out: RenderedLine[], phase: string): void {
    const p = this.known(phase);
    const start = p?.startTime?.getTime() ?? this.lastAt;
    const end = p?.endTime?.getTime() ?? start;
    const status = p?.phaseStatus ?? 'ENDED';
    const id = sectionId(phase);
    out.push({ kind: 'open', id, title: `Phase ${phase} ${status} (${formatDuration(seconds(p, start, end))})`, collapsed: true, at: start });
    out.push({ kind: 'close', id, at: end });
    if (status !== 'SUCCEEDED' && status !== 'ENDED' && p) out.push({ kind: 'error', text: phaseFailure(p, status) });
    this.shown.add(phase);
    this.lastEnded = phase;
  }

  private flushBetween(out: RenderedLine[]): void {
    for (const e of this.between) pushMessage(out, e.message);
    this.between = [];
  }

  private known(phase: string): BuildPhase | undefined {
    return this.phases.find((p) => p.phaseType === phase);
  }

  /** The phases BatchGetBuilds listed, in order, without COMPLETED (which is the end, not a phase that runs). */
  private listed(): string[] {
    return this.phases.map((p) => p.phaseType ?? '').filter((p) => p !== '' && p !== 'COMPLETED');
  }
}

function sectionId(phase: string): string {
  const rank = PHASE_ORDER.indexOf(phase as (typeof PHASE_ORDER)[number]);
  return `codebuild_phase_${rank < 0 ? 'x' : rank}_${phase.toLowerCase()}`;
}

function pushMessage(out: RenderedLine[], message: string): void {
  for (const text of message.replace(/\r?\n$/, '').split('\n')) out.push({ kind: 'line', text });
}

/** CodeBuild's own duration when it has one, else the time between the two stamps. */
function seconds(known: BuildPhase | undefined, start: number, end: number): number {
  return known?.durationInSeconds ?? (end - start) / 1000;
}

/** The first phase that did not succeed (and has a status), if any. */
export function failedPhase(build: Pick<Build, 'phases'>): BuildPhase | undefined {
  return build.phases?.find((p) => p.phaseStatus && p.phaseStatus !== 'SUCCEEDED');
}

/** `Phase BUILD FAILED: COMMAND_EXECUTION_ERROR: …`: the phase, its status and CodeBuild's reasons. */
export function phaseFailure(p: Pick<BuildPhase, 'contexts' | 'phaseStatus'> & { phaseType?: string | undefined }, status = p.phaseStatus ?? 'ENDED'): string {
  const why = (p.contexts ?? []).map((c) => [c.statusCode, c.message].filter(Boolean).join(': ')).filter(Boolean);
  return `Phase ${p.phaseType} ${status}${why.length ? `: ${why.join('; ')}` : ''}`;
}

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** `Queued 2m 10s, then ran 1m 05s`: QUEUED time apart from build time, from CodeBuild's phase times. */
export function queueSummary(phases: BuildPhase[], endTime: Date | undefined): string | undefined {
  const queued = phases.find((p) => p.phaseType === 'QUEUED');
  const running = phases.find((p) => p.phaseType === 'PROVISIONING')?.startTime;
  if (!queued?.startTime || !running || !endTime) return undefined;
  const wait = (running.getTime() - queued.startTime.getTime()) / 1000;
  return `Queued ${formatDuration(wait)}, then ran ${formatDuration((endTime.getTime() - running.getTime()) / 1000)} (CodeBuild's times)`;
}
