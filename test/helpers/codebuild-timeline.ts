import type { Build, BuildPhase, BuildPhaseType } from '@aws-sdk/client-codebuild';
import { ResourceNotFoundException, type GetLogEventsCommandInput, type GetLogEventsCommandOutput } from '@aws-sdk/client-cloudwatch-logs';

export const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
export const BUILD_ID = 'shared-builder:00000000-0000-4000-8000-000000000001';

/** A clock for injected `now`/`sleep`: sleeping advances time instantly and records the interval. */
export function fakeClock() {
  const clock = {
    elapsed: 0,
    sleeps: [] as number[],
    now: () => T0 + clock.elapsed,
    sleep: async (ms: number, signal?: AbortSignal) => {
      signal?.throwIfAborted();
      clock.sleeps.push(ms);
      clock.elapsed += ms;
    },
  };
  return clock;
}

export interface PhaseSpec {
  type: BuildPhaseType;
  /** ms after T0 */
  start: number;
  end?: number;
  status?: BuildPhase['phaseStatus'];
  message?: string;
}

/**
 * A CodeBuild build as BatchGetBuilds would describe it `elapsed` ms after T0: phases started so far,
 * log names from PROVISIONING on, complete once the COMPLETED phase has started.
 */
export function buildAt(phases: PhaseSpec[], elapsed: number, finalStatus: Build['buildStatus'] = 'SUCCEEDED'): Build {
  const started = phases.filter((p) => p.start <= elapsed);
  const complete = started.some((p) => p.type === 'COMPLETED');
  const provisioning = started.some((p) => p.type === 'PROVISIONING');
  return {
    id: BUILD_ID,
    currentPhase: started.at(-1)?.type,
    buildComplete: complete,
    buildStatus: complete ? finalStatus : 'IN_PROGRESS',
    startTime: new Date(T0),
    ...(complete && { endTime: new Date(T0 + (phases.find((p) => p.type === 'COMPLETED')?.start ?? elapsed)) }),
    phases: started.map((p) => {
      const ended = p.end !== undefined && p.end <= elapsed;
      return {
        phaseType: p.type,
        startTime: new Date(T0 + p.start),
        ...(ended && {
          endTime: new Date(T0 + (p.end as number)),
          durationInSeconds: Math.round(((p.end as number) - p.start) / 1000),
          phaseStatus: p.status ?? 'SUCCEEDED',
          ...(p.message && { contexts: [{ statusCode: 'COMMAND_EXECUTION_ERROR', message: p.message }] }),
        }),
      };
    }),
    ...(provisioning && { logs: { groupName: '/aws/codebuild/shared-builder', streamName: BUILD_ID.split(':')[1] } }),
  };
}

export interface LogLine {
  /** ms after T0: the event timestamp */
  at: number;
  message: string;
  /** ms after T0 when GetLogEvents starts returning it; default at + 300 */
  visible?: number;
}

/**
 * GetLogEvents over a stream that exists from `createdAt`, paging `pageSize` events, with forward tokens
 * `f/<index>`; a read starting at an index listed n times in `emptyAt` first gets n empty pages, each
 * with a new token (CloudWatch does this before the end of a stream).
 */
export function fakeLogStream(lines: LogLine[], elapsed: () => number, opts: { createdAt: number; pageSize?: number; emptyAt?: number[] }) {
  const pageSize = opts.pageSize ?? 3;
  const emptyAt = opts.emptyAt ?? [];
  const requests: GetLogEventsCommandInput[] = [];
  const handler = (input: GetLogEventsCommandInput): GetLogEventsCommandOutput => {
    requests.push(input);
    if (elapsed() < opts.createdAt) {
      throw new ResourceNotFoundException({ message: 'The specified log stream does not exist.', $metadata: {} });
    }
    const [, pos = '0', emptied = '0'] = (input.nextToken ?? 'f/0').split('/');
    const from = Number(pos);
    if (emptyAt.filter((i) => i === from).length > Number(emptied)) {
      return { events: [], nextForwardToken: `f/${from}/${Number(emptied) + 1}`, $metadata: {} };
    }
    const visible = lines.filter((l) => (l.visible ?? l.at + 300) <= elapsed()).length;
    const to = Math.min(from + pageSize, visible);
    const events = lines.slice(from, Math.max(from, to)).map((l) => ({ timestamp: T0 + l.at, message: `${l.message}\n` }));
    const token = to > from ? `f/${to}` : (input.nextToken ?? 'f/0');
    return { events, nextForwardToken: token, $metadata: {} };
  };
  return { handler, requests };
}

/** Which section each printed line appeared in, from memoryOutput lines. */
export function linesBySection(lines: string[]): Map<string, string[]> {
  const sections = new Map<string, string[]>();
  let current = '(none)';
  for (const l of lines) {
    const start = /^\[section (\S+)\]/.exec(l);
    if (start) {
      current = start[1] as string;
      sections.set(current, []);
    } else if (l.startsWith('[end ')) {
      current = '(none)';
    } else {
      sections.set(current, [...(sections.get(current) ?? []), l]);
    }
  }
  return sections;
}

/** A line of CodeBuild's agent as a real build writes it: `[Container] 2025/01/01 12:00:06.000417 text`. */
export function agentLine(at: number, text: string, visible?: number): LogLine {
  const iso = new Date(T0 + at).toISOString();
  const micros = `${iso.slice(20, 23)}417`;
  return { at, message: `[Container] ${iso.slice(0, 10).replace(/-/g, '/')} ${iso.slice(11, 19)}.${micros} ${text}`, ...(visible !== undefined && { visible }) };
}

/** The agent's lines around a command phase: start marker, the given lines, end marker and context line. */
export function commandPhase(type: string, start: number, end: number, lines: LogLine[] = []): LogLine[] {
  return [
    agentLine(start, `Entering phase ${type}`),
    ...lines,
    agentLine(end, `Phase complete: ${type} State: SUCCEEDED`),
    agentLine(end, 'Phase context status code:  Message: '),
  ];
}
