/**
 * Loud-build benchmark (issue 21, item 3): `npx tsx bench/loud.ts`, or `BENCH_ONLY=loud npm run bench`.
 *
 * Two real builds on the fake (stack/fake-aws, whose Live Tail samples over 500 events a second as AWS does), each
 * followed by followBuild in its own process (bench/loud-child.ts, bundled first as dist/index.js is), so that its
 * peak RSS is the follower's own:
 * - "200,000 lines": forty bursts of 5,000 lines, one a second, as a verbose package install prints;
 * - "1 MiB line": ticks every 2 s for 20 s, one line of 1 MiB, ticks for 20 s more.
 * Figures: lines per second shown (in the job log until its cap, and the whole log into build.log by the job's exit),
 * API calls per build-minute (StartBuild's start time → the follower's exit) against the budget, peak RSS against a
 * process that loads the same code and clients and follows nothing (measured in the same run), and the job log's size.
 * The follower holds at most a page of lines (10,000 or 1 MB) at a time: run with `--max-old-space-size=32
 * --max-semi-space-size=4`, it followed the 200,000 lines just the same at 106 MB peak RSS (idle 70 MB, 2026-12-07),
 * so most of the default run's figure is garbage V8 has not collected yet, not lines kept.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { CodeBuildClient, StartBuildCommand, type Build } from '@aws-sdk/client-codebuild';
import { buildSync } from 'esbuild';
import { STREAMED_LOG_LIMIT } from '../src/follow/job-log';
import { startFakeAws } from '../stack/fake-aws/server';
import { progress } from './measure';
import { printAlone, type BenchRow } from './rows';

const GROUP = 'loud build';
const CREDENTIALS = { accessKeyId: 'AKIABENCHLOUD0000000', secretAccessKey: 'not-checked' };
const MiB = 1024 * 1024;
/** The follow loop's budget while lines flow (src/follow/pace.ts). */
const BUDGET = 30;

interface Seen {
  lines: number;
  inOrder: boolean;
  firstAt: number;
  lastAt: number;
  bytes: number;
  capAt: number;
  linesAfterCap: number;
  bigBytes: number;
  bigWrittenAt: number;
  bigShownAt: number;
}
interface ChildResult {
  rssMB: number;
  calls: number[];
  seen: Seen;
  returnedAt: number;
  status?: string;
  /** CodeBuild's BUILD phase (JSON: times as strings), for the rate the build wrote at. */
  buildPhase?: { startTime?: string; endTime?: string };
}

const builds = {
  lines: [
    `for b in $(seq 0 39); do awk -v b=$b 'BEGIN { for (i = 1; i <= 5000; i++) printf "line %d Unpacking libexample-dev (1.2.3-4) over (1.2.3-3) ...\\n", b * 5000 + i }'; sleep 1; done`,
  ],
  big: [
    'for i in $(seq 1 10); do echo "tick $i"; sleep 2; done',
    'echo "big at $(date +%s%3N)"',
    "head -c 1048576 /dev/zero | tr '\\0' x; echo",
    'for i in $(seq 11 20); do echo "tick $i"; sleep 2; done',
  ],
};

function buildspec(commands: string[]): string {
  return `version: 0.2\nphases:\n  build:\n    commands:\n${commands.map((c) => `      - ${JSON.stringify(c)}`).join('\n')}\n`;
}

/** Runs the bundled child; resolves with its JSON line. The fake answers from this process meanwhile. */
function runChild(child: string, mode: 'follow' | 'idle', started: Build, logFile: string, env: NodeJS.ProcessEnv): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, mode, logFile], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    p.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(JSON.parse(stdout) as ChildResult) : reject(new Error(`loud-child ${mode} failed (${code}):\n${stderr}`))));
    p.stdin.end(JSON.stringify(started));
  });
}

export async function measure(): Promise<BenchRow[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-loud-'));
  const child = path.join(dir, 'loud-child.js');
  buildSync({ entryPoints: [path.join(__dirname, 'loud-child.ts')], outfile: child, bundle: true, platform: 'node', target: 'node20', mainFields: ['module', 'main'], logLevel: 'warning' });
  const fake = await startFakeAws({ workDir: path.join(dir, 'fake'), phaseDelayMs: 500, projects: [{ name: 'bench', source: { type: 'NO_SOURCE' } }] });
  const env = { ...process.env, AWS_ENDPOINT_URL_CODEBUILD: fake.url, AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: fake.url, AWS_REGION: 'us-east-1' };
  const codebuild = new CodeBuildClient({ region: 'us-east-1', credentials: CREDENTIALS, endpoint: fake.url });
  const start = async (commands: string[]) => (await codebuild.send(new StartBuildCommand({ projectName: 'bench', buildspecOverride: buildspec(commands) }))).build ?? {};
  try {
    // CodeBuild makes the project's log group with its first build: the sessions below start before their streams.
    const first = await start(['true']);
    await runChild(child, 'follow', first, path.join(dir, 'first.log'), env);
    const idle = await runChild(child, 'idle', first, '', env);

    progress('200,000 lines in bursts of 5,000 a second');
    const linesBuild = await start(builds.lines);
    const lines = await runChild(child, 'follow', linesBuild, path.join(dir, 'lines.log'), env);
    const linesFile = readFileSync(path.join(dir, 'lines.log'), 'utf8').split('\n').filter((l) => l.startsWith('line ')).map((l) => Number(l.split(' ')[1]));
    const fileWhole = linesFile.length === 200_000 && linesFile.every((n, i) => n === i + 1);

    progress('one line of 1 MiB');
    const bigBuild = await start(builds.big);
    const big = await runChild(child, 'follow', bigBuild, path.join(dir, 'big.log'), env);
    const bigInFile = readFileSync(path.join(dir, 'big.log'), 'utf8').split('\n').filter((l) => l.startsWith('x')).map((l) => l.length);

    const perMinute = (r: ChildResult, b: Build) => (r.calls.length * 60_000) / (r.returnedAt - (b.startTime?.getTime() ?? 0));
    const rss = (r: ChildResult) => `${r.rssMB.toFixed(0)} MB (idle process with the same code and clients: ${idle.rssMB.toFixed(0)} MB; +${(r.rssMB - idle.rssMB).toFixed(0)} MB)`;
    const s = lines.seen;
    // The BUILD phase is the forty bursts (and their seconds apart): the rate the build wrote at.
    const phase = lines.buildPhase;
    const written = 200_000 / ((Date.parse(phase?.endTime ?? '') - Date.parse(phase?.startTime ?? '')) / 1000);
    const shownRate = s.lines / Math.max((s.lastAt - s.firstAt) / 1000, 0.001);
    const wholeRate = 200_000 / ((lines.returnedAt - s.firstAt) / 1000);
    const linesCalls = perMinute(lines, linesBuild);
    const bigCalls = perMinute(big, bigBuild);
    const b = big.seen;
    return [
      {
        group: GROUP,
        metric: '200,000 lines (40 bursts of 5,000 a second): lines per second shown',
        value: `job log ${shownRate.toFixed(0)}/s until its cap (${(shownRate / written).toFixed(2)}× the ${written.toFixed(0)}/s the build wrote over its BUILD phase), ` +
          `build.log ${wholeRate.toFixed(0)}/s (all 200,000 by the job's exit, ${((lines.returnedAt - s.firstAt) / 1000).toFixed(1)} s after the first was shown)`,
        target: 'every line: job log in order up to its cap, build.log whole',
        met: s.inOrder && fileWhole && lines.status === 'SUCCEEDED',
      },
      {
        group: GROUP,
        metric: '200,000 lines: the job log',
        value: `${(s.bytes / MiB).toFixed(2)} MiB; ${s.lines.toLocaleString('en')} lines shown in order, once, then one line on the cap (${s.linesAfterCap} after it); build.log ${fileWhole ? 'holds all 200,000 in order' : `holds ${linesFile.length}, NOT all in order`}`,
        target: `< 4 MiB (build lines ≤ ${(STREAMED_LOG_LIMIT / MiB).toFixed(1)} MiB), one cap line`,
        met: s.bytes < 4 * MiB && s.capAt > 0 && s.linesAfterCap === 0 && s.inOrder,
      },
      { group: GROUP, metric: '200,000 lines: API calls per build-minute (StartBuild → exit, Live Tail sampled → polling)', value: `${linesCalls.toFixed(1)} (${lines.calls.length} calls)`, target: `≤ ${BUDGET}`, met: linesCalls <= BUDGET },
      { group: GROUP, metric: '200,000 lines: peak RSS of the follower', value: rss(lines), target: 'measured (no target set)', met: true },
      {
        group: GROUP,
        metric: 'one 1 MiB line (in 40 s of ticks): shown',
        value: `${(b.bigBytes / MiB).toFixed(2)} MiB in the job log, ${((b.bigShownAt - b.bigWrittenAt) / 1000).toFixed(2)} s after it was written; build.log: ${bigInFile.length} line of ${bigInFile[0] ?? 0} bytes; job log ${(b.bytes / MiB).toFixed(2)} MiB`,
        target: 'the whole line once, in order; < 4 MiB',
        met: b.bigBytes === MiB && bigInFile.length === 1 && bigInFile[0] === MiB && b.bytes < 4 * MiB && big.status === 'SUCCEEDED',
      },
      { group: GROUP, metric: 'one 1 MiB line: API calls per build-minute (StartBuild → exit, Live Tail)', value: `${bigCalls.toFixed(1)} (${big.calls.length} calls)`, target: `≤ ${BUDGET}`, met: bigCalls <= BUDGET },
      { group: GROUP, metric: 'one 1 MiB line: peak RSS of the follower', value: rss(big), target: 'measured (no target set)', met: true },
    ];
  } finally {
    codebuild.destroy();
    await fake.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) printAlone(measure);
