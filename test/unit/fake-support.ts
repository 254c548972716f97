// Shared set-up for test/unit/fake-*.test.ts: a real s3rver, the fake AWS, and REAL SDK clients reaching
// it through AWS_ENDPOINT_URL_* exactly as the program does.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { BatchGetBuildsCommand, CodeBuildClient, StartBuildCommand, type Build, type StartBuildCommandInput } from '@aws-sdk/client-codebuild';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import yazl from 'yazl';
import { fakeControl } from '../../stack/fake-aws/control';
import { startFakeAws, type FakeAws, type FakeAwsOptions } from '../../stack/fake-aws/server';
import { acceptAnyAccessKey } from '../../stack/s3rver-keys';
import type { Violation } from '../../stack/fake-aws/models/checks';
import { startS3rver } from '../helpers/s3rver-instance';
import { violationsError } from '../helpers/violations';

export const BUCKET = 'sources';
export const STATIC_CREDENTIALS = { accessKeyId: 'AKIAFAKETESTKEY00000', secretAccessKey: 'not-checked' };

export interface Stack {
  fake: FakeAws;
  workDir: string;
  codebuild: CodeBuildClient;
  logs: CloudWatchLogsClient;
  s3: S3Client;
  control: ReturnType<typeof fakeControl>;
  /**
   * The violations of AWS's models the fake recorded since the last call: a test that sends a bad request on
   * purpose takes them and asserts them. stop() fails on any left untaken.
   */
  takeViolations(): Promise<Violation[]>;
  stop(): Promise<void>;
}

export async function startStack(options: Partial<FakeAwsOptions> = {}): Promise<Stack> {
  const workDir = mkdtempSync(join(tmpdir(), 'fake-aws-test-'));
  const stops: (() => Promise<unknown>)[] = [];
  try {
    // As the stack's s3rver: the fake passes S3 calls signed with its STS's keys on.
    acceptAnyAccessKey();
    const s3rver = await startS3rver(BUCKET);
    stops.push(() => s3rver.close());
    const s3Endpoint = s3rver.endpoint;
    const fake = await startFakeAws({ workDir, s3Endpoint, phaseDelayMs: 10, projects: [{ name: 'proj' }], ...options });
    stops.unshift(() => fake.stop());
    for (const service of ['STS', 'CODEBUILD', 'CLOUDWATCH_LOGS', 'SSM', 'SECRETS_MANAGER', 'KMS']) process.env[`AWS_ENDPOINT_URL_${service}`] = fake.url;
    process.env['AWS_REGION'] = 'us-east-1';
    const s3 = new S3Client({
      endpoint: s3Endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      requestChecksumCalculation: 'WHEN_REQUIRED',
    });
    const codebuild = new CodeBuildClient({ credentials: STATIC_CREDENTIALS });
    const logs = new CloudWatchLogsClient({ credentials: STATIC_CREDENTIALS });
    const control = fakeControl(fake.url);
    let taken = 0;
    const takeViolations = async () => {
      const all = await control.violations();
      const fresh = all.slice(taken);
      taken = all.length;
      return fresh;
    };
    return {
      fake,
      workDir,
      codebuild,
      logs,
      s3,
      control,
      takeViolations,
      stop: async () => {
        let untaken: Violation[];
        try {
          untaken = await takeViolations();
        } finally {
          for (const stop of stops) await stop();
          rmSync(workDir, { recursive: true, force: true });
        }
        const error = violationsError(untaken);
        if (error) throw error;
      },
    };
  } catch (e) {
    for (const stop of stops) await stop();
    throw e;
  }
}

export interface ZipItem {
  name: string;
  data?: string;
  mode?: number;
  /** Symlink target (the entry becomes a symlink). */
  link?: string;
}

export async function putZip(s3: S3Client, key: string, items: ZipItem[]): Promise<string> {
  const zip = new yazl.ZipFile();
  for (const item of items) {
    if (item.link !== undefined) zip.addBuffer(Buffer.from(item.link), item.name, { mode: 0o120777 });
    else zip.addBuffer(Buffer.from(item.data ?? ''), item.name, { mode: item.mode ?? 0o100644 });
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const c of zip.outputStream) chunks.push(c as Buffer);
  await s3.send(new PutObjectCommand({ Bucket: BUCKET, Key: key, Body: Buffer.concat(chunks) }));
  return `${BUCKET}/${key}`;
}

export async function runBuild(stack: Stack, input: Omit<StartBuildCommandInput, 'projectName'> & { projectName?: string }): Promise<Build> {
  const started = await stack.codebuild.send(new StartBuildCommand({ projectName: 'proj', ...input }));
  return waitForBuild(stack.codebuild, started.build?.id ?? '');
}

export async function waitForBuild(codebuild: CodeBuildClient, id: string, until: (b: Build) => boolean = (b) => b.buildComplete === true): Promise<Build> {
  for (let i = 0; i < 1500; i++) {
    const { builds } = await codebuild.send(new BatchGetBuildsCommand({ ids: [id] }));
    const build = builds?.[0];
    if (build && until(build)) return build;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`build ${id} did not reach the awaited state`);
}

/** The PID a build wrote with `echo $$ > file`; undefined until the shell has written it (the file may not exist yet). */
export function writtenPid(file: string): number | undefined {
  const text = existsSync(file) ? readFileSync(file, 'utf8').trim() : '';
  return text === '' ? undefined : Number(text);
}

/** The build's whole log, one entry per event, read with startFromHead and forward tokens. */
export async function logMessages(logs: CloudWatchLogsClient, build: Build): Promise<string[]> {
  const messages: string[] = [];
  let nextToken: string | undefined;
  for (;;) {
    const page = await logs.send(
      new GetLogEventsCommand({ logGroupName: build.logs?.groupName, logStreamName: build.logs?.streamName, startFromHead: true, ...(nextToken ? { nextToken } : {}) }),
    );
    messages.push(...(page.events ?? []).map((e) => e.message ?? ''));
    if (page.nextForwardToken === nextToken) return messages;
    nextToken = page.nextForwardToken;
  }
}

/** Output lines of the build's commands (without the agent's [Container] lines). */
export async function commandOutput(logs: CloudWatchLogsClient, build: Build): Promise<string[]> {
  return (await logMessages(logs, build)).filter((m) => !m.startsWith('[Container]')).map((m) => m.replace(/\n$/, ''));
}

export const phaseList = (b: Build) => (b.phases ?? []).map((p) => `${p.phaseType}:${p.phaseStatus ?? '-'}`);

export function buildspec(phases: Record<string, string[] | { commands?: string[]; finally?: string[]; 'on-failure'?: string }>, env = ''): string {
  const lines = ['version: 0.2', env, 'phases:'];
  for (const [name, spec] of Object.entries(phases)) {
    const p = Array.isArray(spec) ? { commands: spec } : spec;
    lines.push(`  ${name}:`);
    if (p['on-failure']) lines.push(`    on-failure: ${p['on-failure']}`);
    for (const key of ['commands', 'finally'] as const) {
      if (p[key]) lines.push(`    ${key}:`, ...p[key].map((c) => `      - ${JSON.stringify(c)}`));
    }
  }
  return lines.filter(Boolean).join('\n') + '\n';
}
