// Loud builds at unit scale (issue 21, item 3): real builds on the fake, whose Live Tail samples over 500 events a
// second as AWS does, followed by followBuild with the real SDK. Not timed: bench/loud.ts measures them.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as delay } from 'node:timers/promises';
import { StartBuildCommand, type Build } from '@aws-sdk/client-codebuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients, type Clients } from '../../src/aws/clients';
import { followBuild } from '../../src/follow/follower';
import { MAX_EVENT_BYTES } from '../../stack/fake-aws/logs';
import { memoryOutput } from '../helpers/output';
import { buildspec, logMessages, startStack, STATIC_CREDENTIALS, waitForBuild, type Stack } from './fake-support';

const MiB = 1024 * 1024;
const CAP_LINE = "The job log nears GitLab's 4 MiB limit";
const SAMPLED_LINE = 'Following the log by polling from here: Live Tail sampled the lines (over 500 a second).';

let stack: Stack;
let clients: Clients;
let dir: string;
beforeAll(async () => {
  stack = await startStack();
  clients = createClients('us-east-1', async () => STATIC_CREDENTIALS);
  dir = mkdtempSync(join(tmpdir(), 'loud-test-'));
  // CodeBuild makes a project's default log group with its first build; a session needs the group.
  const first = await start(['true']);
  await waitForBuild(clients.codebuild, first.id ?? '');
});
afterAll(async () => {
  clients?.logs.destroy();
  clients?.codebuild.destroy();
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function start(commands: string[]): Promise<Build> {
  const started = await clients.codebuild.send(new StartBuildCommand({ projectName: 'proj', sourceTypeOverride: 'NO_SOURCE', buildspecOverride: buildspec({ build: commands }) }));
  return started.build ?? {};
}

/** Follows `build` into its own job log and build.log; `limit`: the job log's cap (default STREAMED_LOG_LIMIT). */
async function follow(build: Build, name: string, limit?: number) {
  const out = memoryOutput();
  const logFile = join(dir, `${name}.log`);
  // The loop's waits are cut short: what is tested here is the lines, not the pace (bench/loud.ts measures that).
  const sleep = (ms: number, signal?: AbortSignal) => delay(Math.min(ms, 250), undefined, signal ? { signal } : {});
  const final = await followBuild({ codebuild: clients.codebuild, logs: clients.logs, tailWith: clients.liveTail, out, logFile, sleep, ...(limit && { jobLogLimit: limit }) }, build);
  const file = readFileSync(logFile, 'utf8').split('\n').slice(0, -1);
  return { final, out: out.lines, file, jobLogBytes: out.lines.reduce((n, l) => n + Buffer.byteLength(l) + 1, 0) };
}

/** The build's own output lines (without the agent's), in the order shown. */
const output = (lines: string[]) => lines.filter((l) => /^(warm|line|before|after|x)/.test(l));

/** Where two long lists first differ (a plain toEqual would print 200,000 lines). */
function firstDifference(got: string[], want: string[]): string | undefined {
  for (let i = 0; i < Math.max(got.length, want.length); i++) {
    if (got[i] !== want[i]) return `at ${i} of ${got.length} (want ${want.length}): got ${got[i]?.slice(0, 80)}, want ${want[i]?.slice(0, 80)}`;
  }
  return undefined;
}

describe('loud builds', () => {
  it('200,000 lines in bursts: Live Tail samples, reads take over with no line lost or repeated; the job log stops at its cap with one line, build.log holds every line', async () => {
    const warm = Array.from({ length: 20 }, (_, i) => `warm-${i + 1}`);
    const lines = Array.from({ length: 200_000 }, (_, i) => `line ${i + 1} Unpacking libexample-dev (1.2.3-4) over (1.2.3-3) ...`);
    // Twenty lines Live Tail shows, then forty bursts of 5,000 lines, 0.1 s apart (a verbose package install).
    const build = await start([
      'for i in $(seq 1 20); do echo warm-$i; sleep 0.05; done',
      `for b in $(seq 0 39); do awk -v b=$b 'BEGIN { for (i = 1; i <= 5000; i++) printf "line %d Unpacking libexample-dev (1.2.3-4) over (1.2.3-3) ...\\n", b * 5000 + i }'; sleep 0.1; done`,
    ]);
    // The same build followed twice at once: with GitLab's cap, and with a job log that holds everything.
    const [capped, whole] = await Promise.all([follow(build, 'capped'), follow(build, 'whole', 64 * MiB)]);
    const want = [...warm, ...lines];

    for (const f of [capped, whole]) {
      expect(f.final.buildStatus).toBe('SUCCEEDED');
      expect(firstDifference(output(f.file), want)).toBeUndefined();
      expect(f.out.filter((l) => l.includes('Live Tail'))).toEqual([SAMPLED_LINE]);
    }
    // Live Tail showed the first lines before it sampled: the handover is from it to the reads.
    const handover = whole.out.indexOf(SAMPLED_LINE);
    expect(output(whole.out.slice(0, handover))).toEqual(expect.arrayContaining(['warm-1']));
    expect(firstDifference(output(whole.out), want)).toBeUndefined();
    expect(whole.out.filter((l) => l.includes(CAP_LINE))).toEqual([]);

    const shown = output(capped.out);
    expect(shown.length).toBeGreaterThan(0);
    expect(shown.length).toBeLessThan(want.length);
    expect(firstDifference(shown, want.slice(0, shown.length))).toBeUndefined();
    const cap = capped.out.findIndex((l) => l.includes(CAP_LINE));
    expect(capped.out.filter((l) => l.includes(CAP_LINE))).toEqual([
      `WARNING: ${CAP_LINE}: from here on it shows only the phases; the whole build log is in the job artifact ${join(dir, 'capped.log')}.`,
    ]);
    // Every line shown comes before the cap's line; the phases' ends still come after it.
    expect(capped.out.lastIndexOf(shown.at(-1) as string)).toBeLessThan(cap);
    expect(capped.out.slice(cap)).toEqual(expect.arrayContaining([expect.stringMatching(/^BUILD SUCCEEDED \(\d+s\)$/), '[end codebuild_phase_6_build]']));
    expect(capped.jobLogBytes).toBeLessThan(4 * MiB);
    // Reading 200,000 lines twice is CPU work: 40 s beside the suite's other files, 84 s once on a busier machine.
  }, 180_000);

  it('a single 1 MiB line: CodeBuild writes it as several events; build.log holds it whole, the job log shows it once, in order', async () => {
    const build = await start(['echo before', "head -c 1048576 /dev/zero | tr '\\0' x; echo", 'echo after']);
    const f = await follow(build, 'long-line');
    expect(f.final.buildStatus).toBe('SUCCEEDED');
    expect(output(f.file)).toEqual(['before', 'x'.repeat(MiB), 'after']);

    // As CodeBuild writes it: pieces within CloudWatch's event size, in order.
    const pieces = (await logMessages(clients.logs, f.final)).filter((m) => m.startsWith('x'));
    expect(pieces.length).toBeGreaterThanOrEqual(4);
    expect(pieces.every((p) => Buffer.byteLength(p) + 26 <= MAX_EVENT_BYTES)).toBe(true);
    expect(pieces.join('')).toBe(`${'x'.repeat(MiB)}\n`);

    const shown = output(f.out);
    expect(shown[0]).toBe('before');
    expect(shown.at(-1)).toBe('after');
    expect(shown.slice(1, -1).join('')).toBe('x'.repeat(MiB));
    expect(f.out.filter((l) => l.includes(CAP_LINE) || l.includes('Live Tail'))).toEqual([]);
    expect(f.jobLogBytes).toBeLessThan(4 * MiB);
  });
});
