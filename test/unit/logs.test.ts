import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { BatchGetBuildsCommand, CodeBuildClient } from '@aws-sdk/client-codebuild';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, describe, expect, it } from 'vitest';
import { AwsStepError } from '../../src/errors';
import { followBuild, formatDuration, Intervals, isThrottling, isTransient } from '../../src/logs';
import { BUILD_ID, buildAt, fakeClock, fakeLogStream, linesBySection, type LogLine, type PhaseSpec } from '../helpers/codebuild-timeline';
import { memoryOutput } from '../helpers/output';

const cbMock = mockClient(CodeBuildClient);
const logsMock = mockClient(CloudWatchLogsClient);
afterEach(() => {
  cbMock.reset();
  logsMock.reset();
});

const creds = { accessKeyId: 'a', secretAccessKey: 'b' };
const PHASES: PhaseSpec[] = [
  { type: 'SUBMITTED', start: 0, end: 1_000 },
  { type: 'QUEUED', start: 1_000, end: 3_000 },
  { type: 'PROVISIONING', start: 3_000, end: 8_000 },
  { type: 'DOWNLOAD_SOURCE', start: 8_000, end: 9_000 },
  { type: 'INSTALL', start: 9_000, end: 9_500 },
  { type: 'PRE_BUILD', start: 9_500, end: 12_000 },
  { type: 'BUILD', start: 12_000, end: 40_000 },
  { type: 'POST_BUILD', start: 40_000, end: 40_500 },
  { type: 'UPLOAD_ARTIFACTS', start: 40_500, end: 41_000 },
  { type: 'FINALIZING', start: 41_000, end: 43_000 },
  { type: 'COMPLETED', start: 43_000 },
];
const LINES: LogLine[] = [
  { at: 6_000, message: '[Container] Waiting for agent ping' },
  { at: 8_100, message: '[Container] Entering phase DOWNLOAD_SOURCE' },
  { at: 9_600, message: 'Logging in to registry' },
  { at: 11_000, message: 'Login Succeeded' },
  ...Array.from({ length: 20 }, (_, i) => ({ at: 13_000 + i * 1_000, message: `Step ${i + 1}/20` })),
  { at: 39_900, message: 'Pushed 127.0.0.1:5000/app@sha256:1234' },
  // Ingested in the last moments of the build: read only by the final drain.
  { at: 41_500, message: '[Container] Phase complete: FINALIZING', visible: 42_950 },
  { at: 42_900, message: '[Container] last line', visible: 43_000 },
];

function scenario(opts: { phases?: PhaseSpec[]; lines?: LogLine[]; createdAt?: number; emptyAt?: number[]; status?: 'SUCCEEDED' | 'FAILED' } = {}) {
  const clock = fakeClock();
  const phases = opts.phases ?? PHASES;
  cbMock.on(BatchGetBuildsCommand).callsFake(() => ({ builds: [buildAt(phases, clock.elapsed, opts.status)] }));
  const stream = fakeLogStream(opts.lines ?? LINES, () => clock.elapsed, { createdAt: opts.createdAt ?? 5_000, emptyAt: opts.emptyAt ?? [] });
  logsMock.on(GetLogEventsCommand).callsFake(stream.handler);
  const out = memoryOutput();
  const deps = {
    codebuild: new CodeBuildClient({ region: 'us-east-1', credentials: creds }),
    logs: new CloudWatchLogsClient({ region: 'us-east-1', credentials: creds }),
    out, sleep: clock.sleep, now: clock.now, random: () => 0.5,
  };
  return { clock, stream, out, deps };
}

const logLines = (out: { lines: string[] }) => out.lines.filter((l) => LINES.some((x) => x.message === l));

describe('followBuild', () => {
  it('streams every log line exactly once, in order, including the tail, and returns the final build', async () => {
    const { out, deps, stream } = scenario({ emptyAt: [0, 9, 24] });
    const build = await followBuild(deps, BUILD_ID);
    expect(build).toMatchObject({ buildComplete: true, buildStatus: 'SUCCEEDED' });
    expect(logLines(out)).toEqual(LINES.map((l) => l.message));
    // GetLogEvents always from the head, each request continuing from the previous forward token.
    expect(stream.requests.every((r) => r.startFromHead === true && r.logGroupName === '/aws/codebuild/shared-builder')).toBe(true);
    const last = stream.requests.at(-1);
    expect(last?.nextToken).toBe(`f/${LINES.length}`);
  });

  it('drains a finished build through empty pages: an empty page is not the end', async () => {
    const { out, deps, clock } = scenario({ emptyAt: [0, 0, 0] });
    clock.elapsed = 50_000;
    await followBuild(deps, BUILD_ID);
    expect(logLines(out)).toEqual(LINES.map((l) => l.message));
    expect(cbMock.commandCalls(BatchGetBuildsCommand)).toHaveLength(1);
  });

  it('prints one section per phase with its duration, each line inside its own phase', async () => {
    const { out, deps } = scenario();
    await followBuild(deps, BUILD_ID);
    const sections = linesBySection(out.lines);
    expect([...sections.keys()]).toEqual([
      'codebuild_phase_0_submitted', 'codebuild_phase_1_queued', 'codebuild_phase_2_provisioning',
      'codebuild_phase_3_download_source', 'codebuild_phase_4_install', 'codebuild_phase_5_pre_build',
      'codebuild_phase_6_build', 'codebuild_phase_7_post_build', 'codebuild_phase_8_upload_artifacts',
      'codebuild_phase_9_finalizing',
    ]);
    expect(sections.get('codebuild_phase_2_provisioning')).toEqual(['[Container] Waiting for agent ping', 'PROVISIONING SUCCEEDED (5s)']);
    expect(sections.get('codebuild_phase_5_pre_build')).toEqual(['Logging in to registry', 'Login Succeeded', 'PRE_BUILD SUCCEEDED (3s)']);
    const build = sections.get('codebuild_phase_6_build') ?? [];
    expect(build[0]).toBe('Step 1/20');
    expect(build.at(-2)).toBe('Pushed 127.0.0.1:5000/app@sha256:1234');
    expect(build.at(-1)).toBe('BUILD SUCCEEDED (28s)');
    expect(sections.get('codebuild_phase_9_finalizing')).toEqual([
      '[Container] Phase complete: FINALIZING', '[Container] last line', 'FINALIZING SUCCEEDED (2s)',
    ]);
    expect(sections.get('(none)')).toBeUndefined();
    expect(out.lines).toContain('[section codebuild_phase_6_build] Phase BUILD');
  });

  it('polls quickly while output flows, backs off to at most 10 s when idle, never longer', async () => {
    const phases: PhaseSpec[] = [
      { type: 'SUBMITTED', start: 0, end: 500 },
      { type: 'QUEUED', start: 500, end: 60_000 },
      { type: 'PROVISIONING', start: 60_000, end: 62_000 },
      { type: 'BUILD', start: 62_000, end: 70_000 },
      { type: 'COMPLETED', start: 70_000 },
    ];
    const lines = Array.from({ length: 6 }, (_, i) => ({ at: 62_000 + i * 1_000, message: `line ${i}` }));
    const { clock, deps, out } = scenario({ phases, lines, createdAt: 61_000 });
    await followBuild(deps, BUILD_ID);
    expect(Math.max(...clock.sleeps)).toBe(Intervals.idle);
    expect(clock.sleeps.slice(0, 5)).toEqual([2_000, 4_000, 8_000, 10_000, 10_000]);
    // While lines flow (visible from 62.3 s to 67.3 s), every poll is quick.
    const startedAt = clock.sleeps.map((_, i) => clock.sleeps.slice(0, i).reduce((a, b) => a + b, 0));
    const whileFlowing = clock.sleeps.filter((_, i) => (startedAt[i] ?? 0) >= 62_300 && (startedAt[i] ?? 0) < 67_300);
    expect(whileFlowing.length).toBeGreaterThanOrEqual(4);
    expect(new Set(whileFlowing)).toEqual(new Set([Intervals.quick]));
    expect(out.lines.filter((l) => l.startsWith('line '))).toHaveLength(6);
  });

  it('treats a missing log stream and empty pages as "no output yet"', async () => {
    const { out, deps, stream } = scenario({ createdAt: 20_000, emptyAt: [0, 1, 2, 3, 4] });
    await followBuild(deps, BUILD_ID);
    expect(logLines(out)).toEqual(LINES.map((l) => l.message));
    expect(out.lines.filter((l) => l.startsWith('WARNING') || l.startsWith('ERROR'))).toEqual([]);
    expect(stream.requests.length).toBeGreaterThan(10);
  });

  it('backs off with jitter on throttling (by error name or SDK classification) and carries on', async () => {
    const { clock, deps, out } = scenario();
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
    const classified = Object.assign(new Error('slow down'), { name: 'SomeNewError', $retryable: { throttling: true }, $metadata: {} });
    cbMock.on(BatchGetBuildsCommand)
      .rejectsOnce(throttled).rejectsOnce(classified).rejectsOnce(throttled)
      .callsFake(() => ({ builds: [buildAt(PHASES, clock.elapsed)] }));
    const build = await followBuild(deps, BUILD_ID);
    expect(build.buildComplete).toBe(true);
    // random() = 0.5: half the exponential step plus a quarter of it.
    expect(clock.sleeps.slice(0, 3)).toEqual([1_500, 3_000, 6_000]);
    expect(logLines(out)).toEqual(LINES.map((l) => l.message));
  });

  it('retries transient 5xx and network errors on the log without losing or repeating lines', async () => {
    const { deps, out, stream } = scenario();
    let calls = 0;
    logsMock.on(GetLogEventsCommand).callsFake((input) => {
      calls++;
      if (calls % 4 === 0) throw Object.assign(new Error('upstream'), { name: 'ServiceUnavailableException', $metadata: { httpStatusCode: 503 } });
      if (calls % 7 === 0) throw Object.assign(new Error('socket hang up'), { name: 'Error', code: 'ECONNRESET', $metadata: {} });
      return stream.handler(input);
    });
    await followBuild(deps, BUILD_ID);
    expect(logLines(out)).toEqual(LINES.map((l) => l.message));
  });

  it('gives up after repeated transient failures, and at once on other errors', async () => {
    const a = scenario();
    cbMock.on(BatchGetBuildsCommand).rejects(Object.assign(new Error('boom'), { name: 'InternalServerException', $metadata: { httpStatusCode: 500 } }));
    await expect(followBuild(a.deps, BUILD_ID)).rejects.toThrow(AwsStepError);
    expect(cbMock.commandCalls(BatchGetBuildsCommand)).toHaveLength(7);

    cbMock.reset();
    const b = scenario();
    cbMock.on(BatchGetBuildsCommand).rejects(Object.assign(new Error('Rate exceeded'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } }));
    const err = await followBuild(b.deps, BUILD_ID).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AwsStepError);
    expect((err as AwsStepError).hint).toContain('codebuild:BatchGetBuilds');
    expect(cbMock.commandCalls(BatchGetBuildsCommand)).toHaveLength(1);
  });

  it('fails when the build disappears', async () => {
    const { deps } = scenario();
    cbMock.on(BatchGetBuildsCommand).resolves({ builds: [], buildsNotFound: [BUILD_ID] });
    await expect(followBuild(deps, BUILD_ID)).rejects.toThrow(
      `Following CodeBuild build ${BUILD_ID} failed: Error: BatchGetBuilds no longer finds the build\nThe build was deleted`,
    );
    expect(cbMock.commandCalls(BatchGetBuildsCommand)).toHaveLength(3);
  });

  it('reports a failed phase with CodeBuild\'s reason', async () => {
    const phases: PhaseSpec[] = [
      { type: 'SUBMITTED', start: 0, end: 1_000 },
      { type: 'PROVISIONING', start: 1_000, end: 2_000 },
      { type: 'BUILD', start: 2_000, end: 5_000, status: 'FAILED', message: 'Error while executing command: docker build. Reason: exit status 1' },
      { type: 'FINALIZING', start: 5_000, end: 6_000 },
      { type: 'COMPLETED', start: 6_000 },
    ];
    const { deps, out } = scenario({ phases, lines: [{ at: 3_000, message: 'boom' }], createdAt: 1_500, status: 'FAILED' });
    const build = await followBuild(deps, BUILD_ID);
    expect(build.buildStatus).toBe('FAILED');
    const sections = linesBySection(out.lines);
    expect(sections.get('codebuild_phase_2_build')).toEqual(['boom', 'BUILD FAILED (3s)']);
    expect(out.lines).toContain('ERROR: Phase BUILD FAILED: COMMAND_EXECUTION_ERROR: Error while executing command: docker build. Reason: exit status 1');
  });

  it('returns the running build when aborted, closing the open section', async () => {
    const { deps, out, clock } = scenario();
    const abort = new AbortController();
    const sleep = deps.sleep;
    deps.sleep = async (ms, signal) => {
      if (clock.elapsed > 20_000) abort.abort('job cancelled');
      return sleep(ms, signal);
    };
    const build = await followBuild(deps, BUILD_ID, abort.signal);
    expect(build.buildComplete).toBe(false);
    expect(build.currentPhase).toBe('BUILD');
    expect(out.lines.at(-1)).toBe('[end codebuild_phase_6_build]');
  });

  it('warns once when the project has CloudWatch Logs disabled', async () => {
    const { deps, out, clock } = scenario();
    cbMock.on(BatchGetBuildsCommand).callsFake(() => {
      const b = buildAt(PHASES, clock.elapsed);
      return { builds: [{ ...b, logs: { cloudWatchLogs: { status: 'DISABLED' }, deepLink: 'https://console/x' } }] };
    });
    await followBuild(deps, BUILD_ID);
    expect(out.lines.filter((l) => l.startsWith('WARNING'))).toEqual([
      'WARNING: CloudWatch Logs are disabled for this CodeBuild project, so the build log is not shown here: https://console/x',
    ]);
    expect(logsMock.commandCalls(GetLogEventsCommand)).toHaveLength(0);
  });
});

describe('error classification', () => {
  it('recognises throttling by name or retry classification, never by message', () => {
    expect(isThrottling({ name: 'ThrottledException' })).toBe(true);
    expect(isThrottling({ name: 'TooManyRequestsException' })).toBe(true);
    expect(isThrottling({ name: 'X', $retryable: { throttling: true } })).toBe(true);
    expect(isThrottling(Object.assign(new Error('Rate exceeded: throttling'), { name: 'ValidationException' }))).toBe(false);
    expect(isTransient({ name: 'X', $metadata: { httpStatusCode: 502 } })).toBe(true);
    expect(isTransient({ name: 'Error', code: 'ETIMEDOUT' })).toBe(true);
    expect(isTransient({ name: 'ValidationException', $metadata: { httpStatusCode: 400 } })).toBe(false);
  });

  it('formats durations', () => {
    expect([formatDuration(0), formatDuration(59.4), formatDuration(65), formatDuration(3_725)]).toEqual(['0s', '59s', '1m 05s', '1h 02m']);
  });
});
