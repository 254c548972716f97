import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { stripVTControlCharacters } from 'node:util';
import { join, resolve } from 'node:path';
import { GetObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { writeAtomically } from '../../stack/process';
import type { Stack } from '../../stack/stack';

export const repoRoot = resolve(__dirname, '../..');
/**
 * dist/index.js copied alone, as the template's job downloads it: proves the bundle needs no file beside it
 * (its lazily loaded modules and the packer's worker code are inside it).
 */
export const distIndex = (() => {
  // Named by its content, so every worker and run shares one copy per build of dist/index.js.
  const bundle = readFileSync(join(repoRoot, 'dist/index.js'));
  const dir = join(tmpdir(), `cbi-dist-${createHash('sha256').update(bundle).digest('hex').slice(0, 16)}`);
  const file = join(dir, 'index.js');
  if (!existsSync(file)) {
    mkdirSync(dir, { recursive: true });
    writeAtomically(file, bundle);
  }
  return file;
})();

/** Node 20 from the machine and Node 22 from the node@22 dev dependency: dist/index.js must run on both. */
export const nodes = {
  node20: '/usr/bin/node',
  node22: join(repoRoot, 'node_modules/node/bin/node'),
};

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

export interface Job {
  dir: string;
  env: Record<string, string>;
  reportDir: string;
}

let jobCounter = 0;
/** The checkouts makeJob made, until removeJobs. */
const jobDirs = new Set<string>();

/** A checkout holding a copy of `fixture` (a folder of this repository, e.g. examples/hello), with the job's variables. */
export async function makeJob(stack: Stack, fixture: string, inputs: Record<string, string> = {}): Promise<Job> {
  const dir = mkdtempSync(join(tmpdir(), 'cbi-job-'));
  jobDirs.add(dir);
  cpSync(resolve(repoRoot, fixture), dir, { recursive: true });
  jobCounter += 1;
  const jobId = String(1000 + jobCounter);
  const token = await stack.signToken();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    CI: 'true',
    CI_PROJECT_DIR: dir,
    CI_PROJECT_PATH: 'group/hello',
    CI_PIPELINE_ID: '77',
    CI_PIPELINE_URL: 'https://gitlab.example.com/group/hello/-/pipelines/77',
    CI_JOB_ID: jobId,
    CI_JOB_NAME: 'build-image',
    CI_JOB_URL: `https://gitlab.example.com/group/hello/-/jobs/${jobId}`,
    CI_COMMIT_SHA: '0123456789abcdef0123456789abcdef01234567',
    CI_COMMIT_SHORT_SHA: '01234567',
    CI_COMMIT_REF_NAME: 'main',
    GITLAB_OIDC_TOKEN: token,
    ...stack.env,
    ...stack.inputs,
    CODEBUILD_IMAGE_IMAGE: `${stack.registry}/group/hello`,
    CODEBUILD_IMAGE_TAGS: JSON.stringify(['01234567', 'latest']),
    CODEBUILD_IMAGE_BUILD_ARGS: JSON.stringify([`BASE_IMAGE=${stack.registry}/busybox:stable`]),
    ...inputs,
  };
  return { dir, env, reportDir: join(dir, '.codebuild-image') };
}

/** Removes every checkout makeJob made (after each end-to-end file, and when a benchmark's process exits). */
export function removeJobs(): void {
  for (const dir of jobDirs) rmSync(dir, { recursive: true, force: true });
  jobDirs.clear();
}
process.once('exit', removeJobs);

/** Runs dist/index.js as the template's job does; `onOutput` sees the output as it streams. */
export function runAction(
  job: Job,
  opts: { args?: string[]; node?: string; onOutput?: (all: string, child: ReturnType<typeof spawn>) => void } = {},
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(opts.node ?? nodes.node20, [distIndex, ...(opts.args ?? [])], {
      cwd: job.dir,
      env: job.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const take = (chunk: Buffer) => {
      output += chunk.toString();
      opts.onOutput?.(output, child);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', reject);
    child.on('close', (code, signal) => resolvePromise({ code, signal, output }));
  });
}

export { readDotenv } from '../helpers/dotenv';

/** The manifest digest the registry serves for `repository:tag`, from its HTTP API. */
export { manifestDigest as registryDigest } from '../../stack/registry';

/** Strips ANSI colours and GitLab section markers, for assertions on the visible log. */
export function visible(output: string): string {
  return stripVTControlCharacters(output).replace(/section_(start|end):\d+:[^\r\n]*\r/g, '');
}

/** An object of the stack's context bucket, as the fake CodeBuild downloads it. */
export async function contextObject(stack: Stack, key: string): Promise<Buffer> {
  const s3 = new S3Client({
    endpoint: stack.s3Endpoint,
    region: stack.region,
    forcePathStyle: true,
    credentials: stack.s3Credentials,
  });
  const res = await s3.send(new GetObjectCommand({ Bucket: stack.bucket, Key: key }));
  return Buffer.from(await res.Body?.transformToByteArray() ?? []);
}

/** A Parameter Store value of the fake, or the error name (ParameterNotFound) when there is none. */
export async function stackParameter(stack: Stack, name: string): Promise<string | undefined> {
  const ssm = new SSMClient({ endpoint: stack.fakeUrl, region: stack.region, credentials: { accessKeyId: 'AKIAFAKETESTKEY00000', secretAccessKey: 'x' } });
  try {
    return (await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }))).Parameter?.Value;
  } catch (e) {
    return (e as Error).name;
  } finally {
    ssm.destroy();
  }
}
