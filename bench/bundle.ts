/**
 * The bundle: size of dist/index.js (as committed: what jobs download) and its cold start, from process start
 * to the first output line, against a bare `node` printing one line, in alternating runs.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fixed, median, progress, timeToOutput } from './measure';
import type { BenchRow } from './rows';

const RUNS = Number(process.env.BENCH_START_RUNS ?? 21);
const dist = path.resolve(__dirname, '../dist/index.js');

/** A job environment good enough to reach the first line (no AWS call happens before it). */
function jobEnv(dir: string): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    CI: 'true',
    CI_PROJECT_DIR: dir,
    CI_PROJECT_PATH: 'group/hello',
    CI_JOB_ID: '1',
    CI_PIPELINE_ID: '1',
    CI_COMMIT_SHA: '0123456789abcdef0123456789abcdef01234567',
    CI_COMMIT_SHORT_SHA: '01234567',
    CI_COMMIT_REF_NAME: 'main',
    GITLAB_OIDC_TOKEN: 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln',
    CODEBUILD_IMAGE_AWS_REGION: 'us-east-1',
    CODEBUILD_IMAGE_ROLE_ARN: 'arn:aws:iam::000000000000:role/bench',
    CODEBUILD_IMAGE_PROJECT_NAME: 'image-builder',
    CODEBUILD_IMAGE_S3_BUCKET: 'bench-bucket',
    CODEBUILD_IMAGE_IMAGE: '127.0.0.1:5000/group/hello',
    // Nothing listens there: the run is killed at its first line anyway.
    AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
  };
}

export async function measure(): Promise<BenchRow[]> {
  const size = statSync(dist).size;
  const dir = mkdtempSync(path.join(tmpdir(), 'bench-start-'));
  try {
    writeFileSync(path.join(dir, 'Dockerfile'), 'FROM alpine\n');
    const hello = path.join(dir, 'hello.js');
    writeFileSync(hello, "console.log('hello');\n");
    const bare: number[] = [];
    const ours: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      bare.push(await timeToOutput(process.execPath, [hello], { cwd: dir }));
      ours.push(await timeToOutput(process.execPath, [dist], { cwd: dir, env: jobEnv(dir) }));
    }
    const b = median(bare);
    const o = median(ours);
    progress(`cold start: bare node ${fixed(b, 0)} ms, dist/index.js ${fixed(o, 0)} ms (median of ${RUNS})`);
    return [
      { group: 'bundle', metric: '`dist/index.js` size', value: `${fixed(size / 1e6, 3)} MB (${size.toLocaleString('en')} bytes)`, target: '≤ 1.0 MB', met: size <= 1_000_000 },
      {
        group: 'bundle',
        metric: 'process start → first output line',
        value: `${fixed(o / b)}× bare node (${fixed(o, 0)} ms vs ${fixed(b, 0)} ms)`,
        target: '≤ 2× bare node',
        met: o <= 2 * b,
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
