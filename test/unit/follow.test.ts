import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudWatchLogsClient, GetLogEventsCommand, StartLiveTailCommand } from '@aws-sdk/client-cloudwatch-logs';
import { BatchGetBuildsCommand, CodeBuildClient } from '@aws-sdk/client-codebuild';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { AwsStepError } from '../../src/shared/errors';
import { followBuild } from '../../src/follow/follower';
import { MAX_FAILED_POLLS, Pace } from '../../src/follow/pace';
import {
  agentLine, BUILD_ID, buildAt, commandPhase, fakeClock, fakeLogStream, linesBySection, type LogLine, type PhaseSpec,
} from '../helpers/codebuild-timeline';
import { memoryOutput } from '../helpers/output';

const logDirs: string[] = [];
/** build.log in a directory of its own, as the report directory is by the time the build is followed. */
function logFileInNewDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'follow-'));
  logDirs.push(dir);
  return join(dir, 'build.log');
}

const cbMock = mockClient(CodeBuildClient);
const logsMock = mockClient(CloudWatchLogsClient);
afterEach(() => {
  cbMock.reset();
  logsMock.reset();
});
// The mocks replace send on the classes: later files in this worker (isolate: false) use real clients.
afterAll(() => {
  cbMock.restore();
  logsMock.restore();
  for (const dir of logDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

const creds = { accessKeyId: 'a', secretAccessKey: 'b' };
function phasesWithBuild(buildEnd: number): PhaseSpec[] {
  return [
    { type: 'SUBMITTED', start: 0, end: 1_000 },
    { type: 'QUEUED', start: 1_000, end: 3_000 },
    { type: 'PROVISIONING', start: 3_000, end: 8_000 },
    { type: 'DOWNLOAD_SOURCE', start: 8_000, end: 9_000 },
    { type: 'INSTALL', start: 9_000, end: 9_500 },
    { type: 'PRE_BUILD', start: 9_500, end: 12_000 },
    { type: 'BUILD', start: 12_000, end: buildEnd },
    { type: 'POST_BUILD', start: buildEnd, end: buildEnd + 500 },
    { type: 'UPLOAD_ARTIFACTS', start: buildEnd + 500, end: buildEnd + 1_000 },
    { type: 'FINALIZING', start: buildEnd + 1_000, end: buildEnd + 3_000 },
    { type: 'COMPLETED', start: buildEnd + 3_000 },
  ];
}

/** The agent's lines of a build whose BUILD phase prints `output` and ends at `buildEnd`. */
function logWith(output: LogLine[], buildEnd: number): LogLine[] {
  return [
    agentLine(6_000, 'Running on CodeBuild On-demand'),
    agentLine(6_000, 'Waiting for agent ping'),
    agentLine(7_900, 'Waiting for DOWNLOAD_SOURCE'),
    agentLine(8_000, 'Phase is DOWNLOAD_SOURCE'),
    agentLine(8_100, 'CODEBUILD_SRC_DIR=/codebuild/output/src1/src'),
    agentLine(8_900, 'Phase complete: DOWNLOAD_SOURCE State: SUCCEEDED'),
    agentLine(8_900, 'Phase context status code:  Message: '),
    ...commandPhase('INSTALL', 9_000, 9_400),
    ...commandPhase('PRE_BUILD', 9_500, 11_900, [{ at: 9_600, message: 'Logging in to registry' }, { at: 11_000, message: 'Login Succeeded' }]),
    ...commandPhase('BUILD', 12_000, buildEnd - 50, output),
    ...commandPhase('POST_BUILD', buildEnd, buildEnd + 400),
    agentLine(buildEnd + 600, 'Expanding base directory path: .'),
    // Ingested in the last moments of the build: read only by the final drain.
    agentLine(buildEnd + 900, 'Phase complete: UPLOAD_ARTIFACTS State: SUCCEEDED', buildEnd + 2_950),
    agentLine(buildEnd + 900, 'Phase context status code:  Message: ', buildEnd + 3_000),
  ];
}

const STEPS: LogLine[] = [
  ...Array.from({ length: 20 }, (_, i) => ({ at: 13_000 + i * 1_000, message: `Step ${i + 1}/20` })),
  { at: 39_900, message: 'Pushed 127.0.0.1:5000/app@sha256:1234' },
];

function scenario(opts: { phases?: PhaseSpec[]; lines?: LogLine[]; status?: 'SUCCEEDED' | 'FAILED'; logFile?: string; jobLogLimit?: number } = {}) {
  const clock = fakeClock();
  const phases = opts.phases ?? phasesWithBuild(40_000);
  const lines = opts.lines ?? logWith(STEPS, 40_000);
  cbMock.on(BatchGetBuildsCommand).callsFake(() => ({ builds: [buildAt(phases, clock.elapsed, opts.status)] }));
  const stream = fakeLogStream(lines, () => clock.elapsed, { createdAt: 5_000 });
  logsMock.on(GetLogEventsCommand).callsFake(stream.handler);
  const out = memoryOutput();
  const deps = {
    codebuild: new CodeBuildClient({ region: 'us-east-1', credentials: creds }),
    logs: new CloudWatchLogsClient({ region: 'us-east-1', credentials: creds }),
    out, sleep: clock.sleep, now: clock.now,
    ...(opts.logFile && { logFile: opts.logFile }),
    ...(opts.jobLogLimit && { jobLogLimit: opts.jobLogLimit }),
  };
  /** API calls made while the fake clock was in [from, to). */
  const callsBetween = (from: number, to: number) => calls.filter((t) => t >= from && t < to).length;
  const calls: number[] = [];
  const count = <T>(f: () => T) => () => {
    calls.push(clock.elapsed);
    return f();
  };
  cbMock.on(BatchGetBuildsCommand).callsFake(count(() => ({ builds: [buildAt(phases, clock.elapsed, opts.status)] })));
  logsMock.on(GetLogEventsCommand).callsFake((input) => count(() => stream.handler(input))());
  // These tests follow by polling, as for a role without logs:StartLiveTail; the Live Tail tests below lift this.
  logsMock.on(StartLiveTailCommand).rejects(Object.assign(new Error('not authorized'), { name: 'AccessDeniedException' }));
  return { clock, stream, out, deps, lines, callsBetween };
}

const printed = (out: { lines: string[] }, lines: LogLine[]) => out.lines.filter((l) => lines.some((x) => x.message === l));

describe('followBuild', () => {
  it('streams every log line once, in order and in its phase, and writes the whole log to build.log', async () => {
    // The report directory exists by the time the build is followed (the build ids are written there first).
    const logFile = logFileInNewDir();
    const { out, deps, lines } = scenario({ logFile });
    const build = await followBuild(deps, { id: BUILD_ID });
    expect(build).toMatchObject({ buildComplete: true, buildStatus: 'SUCCEEDED' });
    expect(printed(out, lines)).toEqual(lines.map((l) => l.message));
    const sections = linesBySection(out.lines);
    expect([...sections.keys()].filter((k) => k.startsWith('codebuild'))).toEqual([
      'codebuild_phase_0_submitted', 'codebuild_phase_1_queued', 'codebuild_phase_2_provisioning', 'codebuild_phase_3_download_source',
      'codebuild_phase_4_install', 'codebuild_phase_5_pre_build', 'codebuild_phase_6_build', 'codebuild_phase_7_post_build',
      'codebuild_phase_8_upload_artifacts', 'codebuild_phase_9_finalizing',
    ]);
    expect(sections.get('codebuild_phase_6_build')?.at(-1)).toBe('BUILD SUCCEEDED (28s)');
    expect(sections.get('codebuild_phase_5_pre_build')).toContain('Login Succeeded');
    expect(out.lines.at(-1)).toBe("Queued 2s, then ran 40s (CodeBuild's times)");
    expect(readFileSync(logFile, 'utf8')).toBe(lines.map((l) => `${l.message}\n`).join(''));
  });

  it('keeps to the call budget: at most 30 calls a minute while lines flow, 10 while silent', async () => {
    // BUILD prints a line every 2 s for a minute, then nothing for two minutes.
    const flowing = Array.from({ length: 30 }, (_, i) => ({ at: 20_000 + i * 2_000, message: `tick ${i}` }));
    const buildEnd = 200_000;
    const { deps, out, callsBetween } = scenario({ phases: phasesWithBuild(buildEnd), lines: logWith(flowing, buildEnd) });
    await followBuild(deps, { id: BUILD_ID });
    expect(printed(out, flowing)).toHaveLength(30);
    expect(callsBetween(20_000, 80_000)).toBeLessThanOrEqual(30);
    expect(callsBetween(20_000, 80_000)).toBeGreaterThanOrEqual(20);
    expect(callsBetween(90_000, 190_000) / (100 / 60)).toBeLessThanOrEqual(10);
  });

  it('notices the end within a second or two once the log shows the last phase ended', async () => {
    const { deps, clock } = scenario();
    await followBuild(deps, { id: BUILD_ID });
    // COMPLETED starts at 43 s; once POST_BUILD's end is read the status is polled every second.
    expect(clock.elapsed).toBeGreaterThanOrEqual(43_000);
    expect(clock.elapsed).toBeLessThanOrEqual(43_000 + Pace.ending);
  });

  it('slows down while AWS throttles, never giving up while the build runs, and shows every line after', async () => {
    const buildEnd = 700_000;
    const lines = logWith(STEPS, buildEnd);
    const { deps, out, clock } = scenario({ phases: phasesWithBuild(buildEnd), lines });
    const throttle = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
    cbMock.on(BatchGetBuildsCommand).callsFake(() => {
      if (clock.elapsed > 15_000 && clock.elapsed < 600_000) throw throttle;
      return { builds: [buildAt(phasesWithBuild(buildEnd), clock.elapsed)] };
    });
    const logs = fakeLogStream(lines, () => clock.elapsed, { createdAt: 5_000 });
    logsMock.on(GetLogEventsCommand).callsFake((input) => {
      if (clock.elapsed > 15_000 && clock.elapsed < 600_000) throw throttle;
      return logs.handler(input);
    });
    const build = await followBuild(deps, { id: BUILD_ID });
    expect(build.buildComplete).toBe(true);
    expect(printed(out, lines)).toEqual(lines.map((l) => l.message));
    expect(out.lines.filter((l) => l.startsWith('WARNING'))).toEqual([
      'WARNING: AWS is throttling the requests that follow the build (ThrottlingException: Rate exceeded): following more slowly.',
    ]);
    expect(Math.max(...clock.sleeps)).toBe(Pace.throttled);
    // Slower, not stopped: about one poll every 30 s through the ten throttled minutes.
    expect(cbMock.commandCalls(BatchGetBuildsCommand).length).toBeLessThan(60);
  });

  it('gives up after repeated failed polls, and at once on errors that will not pass', async () => {
    const a = scenario();
    cbMock.on(BatchGetBuildsCommand).rejects(Object.assign(new Error('boom'), { name: 'InternalFailure', $metadata: { httpStatusCode: 500 } }));
    const err = await followBuild(a.deps, { id: BUILD_ID }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AwsStepError);
    expect((err as AwsStepError).hint).toBe(`AWS or the network failed ${MAX_FAILED_POLLS} polls in a row.`);
    expect(cbMock.commandCalls(BatchGetBuildsCommand)).toHaveLength(MAX_FAILED_POLLS);
    expect(a.out.lines.filter((l) => l.startsWith('WARNING'))).toEqual(['WARNING: Following the build failed (InternalFailure: boom); trying again.']);

    cbMock.reset();
    const b = scenario();
    cbMock.on(BatchGetBuildsCommand).rejects(Object.assign(new Error('no'), { name: 'AccessDeniedException', $metadata: { httpStatusCode: 400 } }));
    const denied = await followBuild(b.deps, { id: BUILD_ID }).catch((e: unknown) => e);
    expect((denied as AwsStepError).hint).toContain('codebuild:BatchGetBuilds');
    expect(cbMock.commandCalls(BatchGetBuildsCommand)).toHaveLength(1);
  });

  it('says once why a build waits long in the queue, and shows queue time apart from build time', async () => {
    const phases = phasesWithBuild(40_000).map((p) => ({ ...p, start: p.type === 'SUBMITTED' || p.type === 'QUEUED' ? p.start : p.start + 120_000, ...(p.end !== undefined && { end: p.type === 'SUBMITTED' ? p.end : p.end + 120_000 }) }));
    const lines = logWith(STEPS, 40_000).map((l) => ({ ...l, at: l.at + 120_000, ...(l.visible !== undefined && { visible: l.visible + 120_000 }) }));
    const { deps, out } = scenario({ phases, lines });
    await followBuild(deps, { id: BUILD_ID });
    const notices = out.lines.filter((l) => l.startsWith('The build is still queued'));
    expect(notices).toHaveLength(1);
    expect(notices[0]).toMatch(/^The build is still queued after 1m 0\ds: CodeBuild starts it when one of the account's concurrent builds/);
    expect(out.lines.at(-1)).toBe("Queued 2m 02s, then ran 40s (CodeBuild's times)");
  });

  it('fails when the build disappears', async () => {
    const { deps } = scenario();
    cbMock.on(BatchGetBuildsCommand).resolves({ builds: [], buildsNotFound: [BUILD_ID] });
    await expect(followBuild(deps, { id: BUILD_ID })).rejects.toThrow(
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
    const lines = [
      agentLine(2_000, 'Entering phase BUILD'), { at: 3_000, message: 'boom' },
      agentLine(4_900, 'Command did not exit successfully docker build exit status 1'),
      agentLine(4_900, 'Phase complete: BUILD State: FAILED'),
      agentLine(4_900, 'Phase context status code: COMMAND_EXECUTION_ERROR Message: Error while executing command: docker build. Reason: exit status 1'),
    ];
    const { deps, out } = scenario({ phases, lines, status: 'FAILED' });
    const build = await followBuild(deps, { id: BUILD_ID });
    expect(build.buildStatus).toBe('FAILED');
    expect(linesBySection(out.lines).get('codebuild_phase_6_build')?.slice(1, 2)).toEqual(['boom']);
    expect(out.lines).toContain('BUILD FAILED (3s)');
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
    const build = await followBuild(deps, { id: BUILD_ID }, abort.signal);
    expect(build.buildComplete).toBe(false);
    expect(build.currentPhase).toBe('BUILD');
    expect(out.lines.at(-1)).toBe('[end codebuild_phase_6_build]');
  });

  it('warns once when the project has CloudWatch Logs disabled, and shows the phases', async () => {
    const { deps, out, clock } = scenario();
    cbMock.on(BatchGetBuildsCommand).callsFake(() => {
      const b = buildAt(phasesWithBuild(40_000), clock.elapsed);
      return { builds: [{ ...b, logs: { cloudWatchLogs: { status: 'DISABLED' }, deepLink: 'https://console/x' } }] };
    });
    await followBuild(deps, { id: BUILD_ID });
    expect(out.lines.filter((l) => l.startsWith('WARNING'))).toEqual([
      'WARNING: CloudWatch Logs are disabled for this CodeBuild project, so the build log is not shown here: https://console/x',
    ]);
    expect(logsMock.commandCalls(GetLogEventsCommand)).toHaveLength(0);
    expect(out.lines.filter((l) => l.startsWith('[section'))).toHaveLength(10);
  });

  it('near the job-log cap, says where the whole log is and keeps showing the phases', async () => {
    const logFile = logFileInNewDir();
    const { deps, out, lines } = scenario({ logFile, jobLogLimit: 600 });
    await followBuild(deps, { id: BUILD_ID });
    const warnings = out.lines.filter((l) => l.startsWith('WARNING'));
    expect(warnings).toEqual([`WARNING: The job log nears GitLab's 4 MiB limit: from here on it shows only the phases; the whole build log is in the job artifact ${logFile}.`]);
    expect(printed(out, lines).length).toBeLessThan(lines.length);
    expect(out.lines).toContain('BUILD SUCCEEDED (28s)');
    expect(out.lines.filter((l) => l.startsWith('[section'))).toHaveLength(10);
    expect(readFileSync(logFile, 'utf8').split('\n')).toHaveLength(lines.length + 1);
  });
});
