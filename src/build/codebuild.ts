import { createHash, randomUUID } from 'node:crypto';
import {
  BatchGetBuildsCommand,
  ListBuildsForProjectCommand,
  StartBuildCommand,
  StopBuildCommand,
  type Build,
  type CodeBuildClient,
  type ComputeType,
  type EnvironmentType,
  type StartBuildCommandInput,
} from '@aws-sdk/client-codebuild';
import { setTimeout as delay } from 'node:timers/promises';
import { JOB_MARKER_VARIABLE, requestVariables } from './variables';
import type { Output } from '../shared/console';
import { withDeadline } from '../shared/deadline';
import { AwsStepError, awsStep } from '../shared/errors';
import type { Settings } from '../inputs/settings';


/** Where the context archive was uploaded (structurally the Upload of src/context/upload.ts). */
export interface SourceLocation {
  bucket: string;
  key: string;
}

/**
 * StartBuild's idempotency token (valid 5 minutes at CodeBuild): a retried request for the same job and
 * the same build never starts a second build, while two different builds from one job never collide.
 * Without a job id (a local run) every call is distinct.
 */
export function idempotencyToken(s: Settings, source: SourceLocation, requestDigest: string): string {
  const job = s.gitlab.jobId ? `${s.gitlab.projectPath ?? ''}#${s.gitlab.jobId}` : randomUUID();
  return createHash('sha256').update(`${job}\n${source.bucket}/${source.key}\n${requestDigest}`).digest('hex');
}

export function startBuildInput(s: Settings, source: SourceLocation, buildspec: string, marker?: string): StartBuildCommandInput {
  const input: StartBuildCommandInput = {
    projectName: s.projectName,
    sourceTypeOverride: 'S3',
    sourceLocationOverride: `${source.bucket}/${source.key}`,
    buildspecOverride: buildspec,
    environmentVariablesOverride: requestVariables(s, marker),
    privilegedModeOverride: true,
  };
  // readSettings validated these against CodeBuild's enums and limits; unset means the project's own.
  if (s.computeType) input.computeTypeOverride = s.computeType as ComputeType;
  if (s.buildImage) input.imageOverride = s.buildImage;
  if (s.environmentType) input.environmentTypeOverride = s.environmentType as EnvironmentType;
  if (s.buildTimeout) input.timeoutInMinutesOverride = s.buildTimeout;
  if (s.queuedTimeout) input.queuedTimeoutInMinutesOverride = s.queuedTimeout;
  if (s.localLayerCache) input.cacheOverride = { type: 'LOCAL', modes: ['LOCAL_DOCKER_LAYER_CACHE'] };
  if (s.fleetArn) input.fleetOverride = { fleetArn: s.fleetArn };
  const requestDigest = createHash('sha256').update(JSON.stringify(input)).digest('hex');
  return { ...input, idempotencyToken: idempotencyToken(s, source, requestDigest) };
}

function startHint(input: StartBuildCommandInput, region: string) {
  return (e: unknown): string | undefined => {
    const name = (e as { name?: string } | undefined)?.name;
    if (name === 'AccessDeniedException') {
      return `The role needs codebuild:StartBuild on the project ${input.projectName} (arn:aws:codebuild:${region}:<account>:project/${input.projectName}).`;
    }
    if (name === 'ResourceNotFoundException') {
      return `No CodeBuild project "${input.projectName}" in ${region}: check project_name and aws_region.`;
    }
    if (name === 'AccountLimitExceededException') return concurrencyExplanation(region, e);
    return undefined;
  };
}

/**
 * One line on CodeBuild's concurrency limits: an account's "Concurrently running builds" quota (per compute
 * type; a new account may allow 0 to 5), or a project's own concurrent build limit, which refuses builds
 * instead of queueing them. `AccountLimitExceededException` says "Cannot have more than N builds in queue
 * for the account"; the message tells the two apart only in wording, so it picks the advice, never the class.
 */
export function concurrencyExplanation(region: string, e?: unknown): string {
  const message = e instanceof Error ? e.message : '';
  const quotas = `https://${consoleHost(region)}/servicequotas/home/services/codebuild/quotas?region=${region}`;
  if (/\bproject\b/i.test(message)) {
    return `The CodeBuild project's concurrent build limit is reached: wait for its running builds, or raise the project's "Concurrent build limit" (it refuses builds instead of queueing them).`;
  }
  return `CodeBuild's concurrent build quota for this account and compute type is reached (new accounts may allow only 0 to 5 concurrent builds): wait for running builds, or request more "Concurrently running builds" in Service Quotas: ${quotas}`;
}

/** The one-line explanation when a build failed before it ran because of a concurrency limit. */
export function queueLimitFailure(build: Build, region: string): string | undefined {
  const early = (build.phases ?? []).filter((p) => p.phaseType === 'SUBMITTED' || p.phaseType === 'QUEUED' || p.phaseType === 'PROVISIONING');
  const context = early.flatMap((p) => (p.phaseStatus && p.phaseStatus !== 'SUCCEEDED' ? (p.contexts ?? []) : []))
    .find((c) => /concurren|limit|quota/i.test(`${c.statusCode ?? ''} ${c.message ?? ''}`));
  if (!context) return undefined;
  return concurrencyExplanation(region, new Error(context.message ?? ''));
}

export async function startBuild(cb: CodeBuildClient, input: StartBuildCommandInput): Promise<Build> {
  const region = await cb.config.region();
  const res = await awsStep(
    `Starting a build of CodeBuild project ${input.projectName}`,
    () => cb.send(new StartBuildCommand(input)),
    startHint(input, region),
  );
  if (!res.build?.id) throw new AwsStepError(`Starting a build of CodeBuild project ${input.projectName}`, new Error('StartBuild answered without a build'));
  return res.build;
}

/** The build as CodeBuild describes it now. */
export async function getBuild(cb: CodeBuildClient, buildId: string): Promise<Build> {
  const res = await awsStep(`Reading CodeBuild build ${buildId}`, () => cb.send(new BatchGetBuildsCommand({ ids: [buildId] })));
  const build = res.builds?.[0];
  if (!build) throw new AwsStepError(`Reading CodeBuild build ${buildId}`, new Error('no such build'), 'Check aws_region and that the build was not deleted.');
  return build;
}

/** The value of an exported variable of a finished build, e.g. the digest variable. */
export function exportedVariable(build: Build, name: string): string | undefined {
  return build.exportedEnvironmentVariables?.find((v) => v.name === name)?.value || undefined;
}

/** The AWS console's host for a region, in its partition (China and GovCloud have their own). */
export function consoleHost(region: string): string {
  if (region.startsWith('cn-')) return `${region}.console.amazonaws.cn`;
  if (region.startsWith('us-gov-')) return `${region}.console.amazonaws-us-gov.com`;
  return `${region}.console.aws.amazon.com`;
}

/** The build's page in the AWS console; the account comes from the build ARN. */
export function consoleUrl(region: string, build: Build): string {
  // arn:<partition>:codebuild:<region>:<account>:build/<project>:<uuid>
  const [, , , , account = ''] = (build.arn ?? '').split(':');
  const id = build.id ?? '';
  const project = build.projectName ?? id.slice(0, id.lastIndexOf(':'));
  return (
    `https://${consoleHost(region)}/codesuite/codebuild/${account}/projects/` +
    `${encodeURIComponent(project)}/build/${encodeURIComponent(id)}/?region=${region}`
  );
}

export interface StopOptions {
  /** How long to wait for CodeBuild to report the build stopped; default 60 s. */
  timeoutMs?: number;
  /** How long StopBuild itself may take, its retries included; default the client's own retries. */
  requestMs?: number;
  /** Client for the checks after StopBuild (polling, with ordinary retries); default the one that stops. */
  checkWith?: CodeBuildClient;
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/**
 * Asks CodeBuild to stop the build, then waits (bounded) until it has stopped; returns the last Build seen.
 * Once StopBuild is accepted the build is stopping, so a failing check (e.g. throttled) is only warned about.
 */
export async function stopBuild(cb: CodeBuildClient, buildId: string, out: Output, opts: StopOptions = {}): Promise<Build> {
  const { timeoutMs = 60_000, pollMs = 2_000, sleep = (ms) => delay(ms), now = Date.now, checkWith = cb } = opts;
  out.info(`Stopping CodeBuild build ${buildId}`);
  const command = new StopBuildCommand({ id: buildId });
  const { requestMs } = opts;
  // Within a deadline each attempt gets a third of it, so one attempt that never answers leaves room for a retry.
  const send = requestMs === undefined ? () => cb.send(command)
    : () => withDeadline(requestMs, undefined, 'StopBuild', (abortSignal) => cb.send(command, { abortSignal, requestTimeout: Math.floor(requestMs / 3) }));
  const stopped = await awsStep(`Stopping CodeBuild build ${buildId}`, send);
  let build = stopped.build ?? { id: buildId };
  const deadline = now() + timeoutMs;
  let warned = false;
  while (!build.buildComplete) {
    if (now() >= deadline) {
      out.warn(`CodeBuild build ${buildId} is still ${build.buildStatus ?? 'running'} after ${Math.round(timeoutMs / 1000)}s; it is stopping in the background`);
      return build;
    }
    await sleep(pollMs);
    try {
      const res = await withDeadline(Math.max(deadline - now(), 1), undefined, 'BatchGetBuilds', (abortSignal) =>
        checkWith.send(new BatchGetBuildsCommand({ ids: [buildId] }), { abortSignal }));
      build = res.builds?.[0] ?? build;
    } catch (e) {
      if (!warned) out.warn(`StopBuild was accepted, but checking build ${buildId} failed (${(e as Error).name}); will keep checking`);
      warned = true;
    }
  }
  out.info(`CodeBuild build ${buildId} is ${build.buildStatus ?? 'finished'}`);
  return build;
}

export interface FindOptions {
  /** How long to keep looking: a build just started can take a moment to be listed; default 20 s. */
  timeoutMs?: number;
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

/**
 * The id of the build of `projectName` that carries `marker` in JOB_MARKER_VARIABLE, among the project's
 * 100 most recent builds; undefined when none does, i.e. StartBuild never reached CodeBuild.
 */
export async function findBuildByMarker(cb: CodeBuildClient, projectName: string, marker: string, opts: FindOptions = {}): Promise<string | undefined> {
  const { timeoutMs = 20_000, pollMs = 2_000, sleep = (ms) => delay(ms), now = Date.now } = opts;
  const step = `Looking for this job's build among the recent builds of CodeBuild project ${projectName}`;
  const hint = 'The role needs codebuild:ListBuildsForProject and codebuild:BatchGetBuilds on the project.';
  const deadline = now() + timeoutMs;
  for (;;) {
    const listed = await awsStep(step, () => cb.send(new ListBuildsForProjectCommand({ projectName, sortOrder: 'DESCENDING' })), () => hint);
    const ids = listed.ids ?? [];
    if (ids.length > 0) {
      const res = await awsStep(step, () => cb.send(new BatchGetBuildsCommand({ ids: ids.slice(0, 100) })), () => hint);
      const found = res.builds?.find((b) => b.environment?.environmentVariables?.some((v) => v.name === JOB_MARKER_VARIABLE && v.value === marker));
      if (found?.id) return found.id;
    }
    if (now() >= deadline) return undefined;
    await sleep(pollMs);
  }
}
