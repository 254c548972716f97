import type { BuildPhase } from '@aws-sdk/client-codebuild';
import { describe, expect, it } from 'vitest';
import { formatDuration, parseMarker, PhaseRenderer, queueSummary, type LogEvent, type RenderedLine } from '../../src/follow/phases';

const T0 = Date.UTC(2025, 5, 4, 21, 56, 0);

/**
 * A build log in the exact format of a real CodeBuild build (agent lines `[Container] yyyy/mm/dd
 * hh:mm:ss.micros text`, `Phase is DOWNLOAD_SOURCE`, `Entering phase X`, `Phase complete: X State: S`,
 * `Phase context status code: C Message: M`, blank events between commands, and UPLOAD_ARTIFACTS without
 * a start marker), as in AWS's samples and users' posted logs: e.g. github.com/aws/copilot-cli/issues/2780
 * (`Phase complete: POST_BUILD State: FAILED`, UPLOAD_ARTIFACTS' lines), nathanpeck/socket.io-chat-fargate#9
 * (the older `Success: false`), and 2025 logs with microsecond stamps and `Phase is DOWNLOAD_SOURCE`.
 * `s` is seconds after T0.
 */
function agent(s: number, text: string): LogEvent {
  const d = new Date(T0 + s * 1000);
  const iso = d.toISOString();
  const micros = String(d.getUTCMilliseconds() * 1000 + 417).padStart(6, '0');
  return { timestamp: T0 + s * 1000, message: `[Container] ${iso.slice(0, 10).replace(/-/g, '/')} ${iso.slice(11, 19)}.${micros} ${text}\n` };
}
const out = (s: number, text: string): LogEvent => ({ timestamp: T0 + s * 1000, message: `${text}\n` });

const REAL_LOG: LogEvent[] = [
  agent(15.282, 'Running on CodeBuild On-demand'),
  agent(15.282, 'Waiting for agent ping'),
  agent(15.585, 'Waiting for DOWNLOAD_SOURCE'),
  agent(16.778, 'Phase is DOWNLOAD_SOURCE'),
  agent(16.779, 'CODEBUILD_SRC_DIR=/codebuild/output/src830115033/src'),
  agent(16.780, 'YAML location is /codebuild/readonly/buildspec.yml'),
  agent(16.786, 'Processing environment variables'),
  agent(17.023, 'Phases found in YAML: 3'),
  agent(17.023, ' PRE_BUILD: 1 commands'),
  agent(17.023, ' BUILD: 2 commands'),
  agent(17.024, 'Phase complete: DOWNLOAD_SOURCE State: SUCCEEDED'),
  agent(17.024, 'Phase context status code:  Message: '),
  agent(17.116, 'Entering phase INSTALL'),
  agent(17.120, 'Phase complete: INSTALL State: SUCCEEDED'),
  agent(17.120, 'Phase context status code:  Message: '),
  agent(17.200, 'Entering phase PRE_BUILD'),
  agent(17.210, 'Running command aws ecr get-login-password | docker login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com'),
  out(18.5, 'Login Succeeded'),
  out(18.5, ''),
  agent(18.6, 'Phase complete: PRE_BUILD State: SUCCEEDED'),
  agent(18.6, 'Phase context status code:  Message: '),
  agent(18.7, 'Entering phase BUILD'),
  agent(18.7, 'Running command docker build -t app .'),
  out(19.0, '#1 [internal] load build definition from Dockerfile'),
  out(45.9, '#8 DONE 26.4s'),
  agent(46.0, 'Running command docker push app'),
  out(47.5, 'latest: digest: sha256:1234 size: 1570'),
  agent(47.6, 'Phase complete: BUILD State: SUCCEEDED'),
  agent(47.6, 'Phase context status code:  Message: '),
  agent(47.7, 'Entering phase POST_BUILD'),
  agent(47.7, 'Phase complete: POST_BUILD State: SUCCEEDED'),
  agent(47.7, 'Phase context status code:  Message: '),
  agent(47.8, 'Expanding base directory path: .'),
  agent(47.8, 'Assembling file list'),
  agent(47.8, 'Phase complete: UPLOAD_ARTIFACTS State: SUCCEEDED'),
  agent(47.8, 'Phase context status code:  Message: '),
];

function phase(type: string, start: number, end?: number, status?: string, contexts?: BuildPhase['contexts']): BuildPhase {
  return {
    phaseType: type as BuildPhase['phaseType'],
    startTime: new Date(T0 + start * 1000),
    ...(end !== undefined && { endTime: new Date(T0 + end * 1000), durationInSeconds: Math.floor(end - start), phaseStatus: (status ?? 'SUCCEEDED') as BuildPhase['phaseStatus'] }),
    ...(contexts && { contexts }),
  };
}

const RUNNING: BuildPhase[] = [phase('SUBMITTED', 0, 0.4), phase('QUEUED', 0.4, 3), phase('PROVISIONING', 3)];
const FINAL: BuildPhase[] = [
  phase('SUBMITTED', 0, 0.4), phase('QUEUED', 0.4, 3), phase('PROVISIONING', 3, 16.778), phase('DOWNLOAD_SOURCE', 16.778, 17.1),
  phase('INSTALL', 17.1, 17.19), phase('PRE_BUILD', 17.19, 18.65), phase('BUILD', 18.65, 47.65), phase('POST_BUILD', 47.65, 47.75),
  phase('UPLOAD_ARTIFACTS', 47.75, 47.9), phase('FINALIZING', 47.9, 50.1), phase('COMPLETED', 50.1),
];

/** The rendered lines as the job log shows them, one section a map entry. */
function bySection(lines: RenderedLine[]): Map<string, string[]> {
  const sections = new Map<string, string[]>();
  let current = '(none)';
  for (const l of lines) {
    if (l.kind === 'open') sections.set((current = l.id), [`# ${l.title}`]);
    else if (l.kind === 'close') current = '(none)';
    else sections.set(current, [...(sections.get(current) ?? []), l.kind === 'error' ? `ERROR ${l.text}` : l.text]);
  }
  return sections;
}

const stripAgent = (l: string) => l.replace(/^\[Container\] \S+ \S+ /, '');

describe('PhaseRenderer on a real CodeBuild log', () => {
  it('puts every line in the phase CodeBuild was in, from its own phase markers', () => {
    const r = new PhaseRenderer();
    const lines = [...r.render(REAL_LOG, RUNNING), ...r.finish(FINAL, 'SUCCEEDED')];
    const sections = bySection(lines);
    expect([...sections.keys()]).toEqual([
      'codebuild_phase_0_submitted', 'codebuild_phase_1_queued', 'codebuild_phase_2_provisioning', 'codebuild_phase_3_download_source',
      'codebuild_phase_4_install', 'codebuild_phase_5_pre_build', 'codebuild_phase_6_build', 'codebuild_phase_7_post_build',
      'codebuild_phase_8_upload_artifacts', 'codebuild_phase_9_finalizing',
    ]);
    const body = (id: string) => (sections.get(id) ?? []).slice(1).map(stripAgent);
    expect(body('codebuild_phase_2_provisioning')).toEqual(['Running on CodeBuild On-demand', 'Waiting for agent ping', 'Waiting for DOWNLOAD_SOURCE', 'PROVISIONING SUCCEEDED (14s)']);
    expect(body('codebuild_phase_3_download_source')[0]).toBe('Phase is DOWNLOAD_SOURCE');
    expect(body('codebuild_phase_3_download_source').at(-2)).toBe('Phase context status code:  Message: ');
    expect(body('codebuild_phase_4_install')).toEqual(['Entering phase INSTALL', 'Phase complete: INSTALL State: SUCCEEDED', 'Phase context status code:  Message: ', 'INSTALL SUCCEEDED (0s)']);
    expect(body('codebuild_phase_5_pre_build')).toContain('Login Succeeded');
    expect(body('codebuild_phase_6_build')[0]).toBe('Entering phase BUILD');
    expect(body('codebuild_phase_6_build').slice(-3)).toEqual(['Phase complete: BUILD State: SUCCEEDED', 'Phase context status code:  Message: ', 'BUILD SUCCEEDED (29s)']);
    expect(body('codebuild_phase_7_post_build')).toEqual(['Entering phase POST_BUILD', 'Phase complete: POST_BUILD State: SUCCEEDED', 'Phase context status code:  Message: ', 'POST_BUILD SUCCEEDED (0s)']);
    // UPLOAD_ARTIFACTS writes no start marker: its lines sit between POST_BUILD's end and its own end.
    expect(body('codebuild_phase_8_upload_artifacts')[0]).toBe('Expanding base directory path: .');
    // Phases without output: one line, the section title, with CodeBuild's duration.
    expect(sections.get('codebuild_phase_0_submitted')).toEqual(['# Phase SUBMITTED SUCCEEDED (0s)']);
    expect(sections.get('codebuild_phase_9_finalizing')).toEqual(['# Phase FINALIZING SUCCEEDED (2s)']);
    expect(sections.has('(none)')).toBe(false);
    expect(lines.filter((l) => l.kind === 'line')).toHaveLength(REAL_LOG.length);
  });

  it('stamps each section with CodeBuild times, so GitLab shows real durations', () => {
    const r = new PhaseRenderer();
    const lines = [...r.render(REAL_LOG, RUNNING), ...r.finish(FINAL, 'SUCCEEDED')];
    const times = (id: string) => lines.filter((l) => (l.kind === 'open' || l.kind === 'close') && l.id === id).map((l) => ((l as { at: number }).at - T0) / 1000);
    // PROVISIONING's start comes from BatchGetBuilds; the log's markers give the later boundaries.
    expect(times('codebuild_phase_2_provisioning')).toEqual([3, 16.778]);
    expect(times('codebuild_phase_6_build')).toEqual([18.7, 47.6]);
    expect(times('codebuild_phase_1_queued')).toEqual([0.4, 3]);
    expect(times('codebuild_phase_9_finalizing')).toEqual([47.9, 50.1]);
  });

  it('streams: a section opens with its marker, before the phase ends', () => {
    const r = new PhaseRenderer();
    const cut = REAL_LOG.findIndex((e) => e.message.includes('#8 DONE'));
    const first = r.render(REAL_LOG.slice(0, cut), RUNNING);
    expect(first.at(-1)).toEqual({ kind: 'line', text: '#1 [internal] load build definition from Dockerfile' });
    expect(first.filter((l) => l.kind === 'open').at(-1)).toMatchObject({ id: 'codebuild_phase_6_build' });
    expect(r.ending).toBe(false);
    const rest = r.render(REAL_LOG.slice(cut), RUNNING);
    expect(rest.filter((l) => l.kind === 'open').map((l) => (l as { id: string }).id)).toEqual(['codebuild_phase_7_post_build', 'codebuild_phase_8_upload_artifacts']);
    // The last commands ended: the build is about to complete.
    expect(r.ending).toBe(true);
  });

  it('reports a failed phase with the reason from its context line, and older agents\' "Success: false"', () => {
    const failing = [
      agent(1, 'Entering phase BUILD'),
      agent(1, 'Running command docker build --tag "${IMAGE_URI}" ./src'),
      out(1.2, 'unable to prepare context: path "./src" not found'),
      out(1.2, ''),
      agent(1.3, 'Command did not exit successfully docker build --tag "${IMAGE_URI}" ./src exit status 1'),
      { timestamp: T0 + 1300, message: '[Container] 2018/10/04 03:00:19 Phase complete: BUILD Success: false\n' },
      agent(1.3, 'Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: docker build --tag "${IMAGE_URI}" ./src. Reason: exit status 1'),
    ];
    const lines = new PhaseRenderer().render(failing, [phase('BUILD', 1)]);
    expect(lines.filter((l) => l.kind === 'status' || l.kind === 'error')).toEqual([
      { kind: 'status', text: 'BUILD FAILED (0s)' },
      { kind: 'error', text: 'Phase BUILD FAILED: COMMAND_EXECUTION_ERROR: Error while executing command: docker build --tag "${IMAGE_URI}" ./src. Reason: exit status 1' },
    ]);
  });

  it('without any log (logs disabled), shows every phase as one line at the end', () => {
    const lines = new PhaseRenderer().finish(FINAL, 'SUCCEEDED');
    expect(lines.filter((l) => l.kind === 'open')).toHaveLength(10);
    expect(lines.filter((l) => l.kind === 'line')).toEqual([]);
  });

  it('closes the open section where the log stopped when following is abandoned', () => {
    const r = new PhaseRenderer();
    r.render(REAL_LOG.slice(0, 24), RUNNING);
    expect(r.abort()).toEqual([{ kind: 'close', id: 'codebuild_phase_6_build', at: T0 + 19_000 }]);
  });
});

describe('phase markers', () => {
  it('recognises the agent\'s markers with or without fractional seconds, on containers and instances', () => {
    expect(parseMarker('[Container] 2025/06/04 21:56:17.116404 Entering phase INSTALL\n')).toEqual({ kind: 'start', phase: 'INSTALL' });
    expect(parseMarker('[Instance] 2026/04/27 10:04:50.381997 Phase is DOWNLOAD_SOURCE')).toEqual({ kind: 'start', phase: 'DOWNLOAD_SOURCE' });
    expect(parseMarker('[Container] 2021/08/27 12:27:30 Phase complete: UPLOAD_ARTIFACTS State: FAILED')).toEqual({ kind: 'complete', phase: 'UPLOAD_ARTIFACTS', status: 'FAILED' });
    expect(parseMarker('[Container] 2021/08/27 12:27:30 Phase context status code: CLIENT_ERROR Message: no matching artifact paths found'))
      .toEqual({ kind: 'context', code: 'CLIENT_ERROR', message: 'no matching artifact paths found' });
    // Build output that merely mentions a phase is not a marker.
    expect(parseMarker('Entering phase BUILD')).toBeUndefined();
    expect(parseMarker('[Container] 2025/06/04 21:56:17.116404 Running command echo Entering phase BUILD')).toBeUndefined();
  });

  it('formats durations and the queue summary', () => {
    expect([formatDuration(0), formatDuration(59.4), formatDuration(65), formatDuration(3_725)]).toEqual(['0s', '59s', '1m 05s', '1h 02m']);
    expect(queueSummary(FINAL, new Date(T0 + 50_100))).toBe("Queued 3s, then ran 47s (CodeBuild's times)");
  });
});
