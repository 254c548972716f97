import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { BuildspecError, parseBuildspec, type Buildspec, type CommandPhase } from './buildspec';
import type { FakeBuild, PhaseContext, PhaseStatus, PhaseType } from './builds';
import { buildEnvironment, referencedValues, SecretError } from './env';
import type { Authorizer } from './iam/authorizer';
import { BuildRole } from './iam/build-role';
import type { LogsStore } from './logs';
import type { ResolvedOptions } from './options';
import { createShellSession, type ShellSession } from './shell';
import { downloadSource, extractZip, SourceError, sourceZipPath } from './source';

export interface RunnerDeps {
  options: ResolvedOptions;
  logs: LogsStore;
  /** Decides what the build does as its service role. */
  iam: Authorizer;
  /** How long a build started now spends in PROVISIONING, where a test says (default phaseDelayMs). */
  provisioningMs?: () => number | undefined;
}

/** A build being executed; `finished` settles when it is COMPLETED. */
export interface BuildRun {
  finished: Promise<void>;
  stop(): void;
}

class Interrupted extends Error {
  constructor(readonly status: 'STOPPED' | 'TIMED_OUT') {
    super(status);
  }
}

interface PhaseResult {
  status: PhaseStatus;
  context?: PhaseContext;
}

const COMMAND_PHASES: [PhaseType, CommandPhase][] = [
  ['INSTALL', 'install'],
  ['PRE_BUILD', 'pre_build'],
  ['BUILD', 'build'],
  ['POST_BUILD', 'post_build'],
];

export function startRun(build: FakeBuild, deps: RunnerDeps): BuildRun {
  let interrupted: Interrupted | undefined;
  let shell: ShellSession | undefined;
  let wake: (() => void) | undefined;
  let timer: NodeJS.Timeout | undefined;
  const secretValues: string[] = [];
  const provisioningMs = deps.provisioningMs?.();

  const interrupt = (status: 'STOPPED' | 'TIMED_OUT') => {
    if (interrupted || build.done) return;
    interrupted = new Interrupted(status);
    wake?.();
    void shell?.kill();
  };
  const check = () => {
    if (interrupted) throw interrupted;
  };
  const pause = async (ms: number) => {
    await new Promise<void>((r) => {
      wake = r;
      setTimeout(r, ms).unref();
    });
    check();
  };
  const mask = (text: string) => secretValues.reduce((t, s) => t.split(s).join('***'), text);
  const output = (line: string) => deps.logs.put(build.groupName, build.streamName, mask(line) + '\n');
  const container = (text: string) => output(`[Container] ${containerTime(new Date())} ${text}`);

  let current: PhaseResult = { status: 'SUCCEEDED' };
  const enter = (phase: PhaseType) => {
    build.enterPhase(phase, current.status, current.context);
    current = { status: 'SUCCEEDED' };
  };

  const dir = join(deps.options.workDir, 'builds', build.streamName);
  const srcDir = join(dir, 'src');
  const role = new BuildRole(deps.iam, build, deps.options);

  /** Through PROVISIONING into DOWNLOAD_SOURCE; CodeBuild's error instead when the role cannot write the log. */
  async function provision(): Promise<string | undefined> {
    await pause(deps.options.phaseDelayMs);
    enter('QUEUED');
    await pause(deps.options.phaseDelayMs);
    enter('PROVISIONING');
    timer = setTimeout(() => interrupt('TIMED_OUT'), build.settings.timeoutInMinutes * deps.options.minuteMs);
    const denied = await role.logWrites();
    if (denied) return denied;
    if (provisioningMs !== undefined) await pause(provisioningMs);
    deps.logs.createStream(build.groupName, build.streamName);
    build.logsStarted = true;
    container('Running on CodeBuild On-demand');
    container('Waiting for agent ping');
    await pause(deps.options.phaseDelayMs);
    container('Waiting for DOWNLOAD_SOURCE');
    enter('DOWNLOAD_SOURCE');
    container('Phase is DOWNLOAD_SOURCE');
    return undefined;
  }

  /** DOWNLOAD_SOURCE: fetch and unpack the source, read the buildspec, resolve the environment. */
  async function downloadSource_(): Promise<{ spec: Buildspec; env: Record<string, string> }> {
    await mkdir(srcDir, { recursive: true });
    await mkdir(join(dir, 'home'), { recursive: true });
    await mkdir(join(dir, 'tmp'), { recursive: true });
    const { source } = build.settings;
    if (source.type === 'S3') {
      const denied = await role.sourceRead(source.location ?? '');
      if (denied) throw new SourceError(`CLIENT_ERROR: AccessDenied: ${denied} for primary source and source version ${source.location ?? ''}`);
      await downloadSource(deps.options, source.location ?? '', sourceZipPath(dir));
      check();
      await extractZip(sourceZipPath(dir), srcDir);
    }
    container(`CODEBUILD_SRC_DIR=${srcDir}`);
    const text = readBuildspec(source.buildspec, srcDir);
    build.buildspecText = text;
    const spec = parseBuildspec(text);
    container('Processing environment variables');
    const references = referencedValues(build, spec);
    const parameterDenied = await role.parameterReads(references.parameters);
    if (parameterDenied) throw new SecretError(`Decrypted Variables Error: AccessDeniedException: ${parameterDenied}`);
    const secretDenied = await role.secretReads(references.secrets);
    if (secretDenied) throw new SecretError(`Secrets Manager Error: AccessDeniedException: ${secretDenied}`);
    const env = buildEnvironment(build, spec, deps.options, { src: srcDir, home: join(dir, 'home'), tmp: join(dir, 'tmp') });
    secretValues.push(...env.secretValues);
    build.receivedEnv = env.redacted;
    return { spec, env: env.env };
  }

  async function runCommand(command: string, succeeding: boolean): Promise<PhaseContext | undefined> {
    container(`Running command ${command}`);
    const { code, signal } = await shell!.run(command, output, { CODEBUILD_BUILD_SUCCEEDING: succeeding ? '1' : '0' });
    check();
    if (code === 0) return undefined;
    const reason = code === null ? `signal ${signal ?? 'unknown'}` : `exit status ${code}`;
    container(`Command did not exit successfully ${command} ${reason}`);
    return { statusCode: 'COMMAND_EXECUTION_ERROR', message: `Error while executing command: ${command}. Reason: ${reason}` };
  }

  async function commandPhase(spec: Buildspec, name: CommandPhase, succeeding: boolean): Promise<PhaseResult> {
    const phase = spec.phases[name];
    let failure: PhaseContext | undefined;
    for (const command of phase.commands) {
      failure = await runCommand(command, succeeding);
      if (failure) break;
    }
    for (const command of phase.finally) {
      const finallyFailure = await runCommand(command, succeeding && !failure);
      failure ??= finallyFailure;
      if (finallyFailure) break;
    }
    return failure ? { status: 'FAILED', context: failure } : { status: 'SUCCEEDED' };
  }

  const endPhase = (phase: PhaseType) => {
    container(`Phase complete: ${phase} State: ${current.status}`);
    container(`Phase context status code: ${current.context?.statusCode ?? ''} Message: ${current.context?.message ?? ''}`);
  };

  /** Ends the current phase FAILED with `error` (`<status code>: <message>`), and the build with it. */
  const failNow = (error: string, logged?: PhaseType): PhaseStatus => {
    const [statusCode, ...rest] = error.split(': ');
    current = { status: 'FAILED', context: { statusCode: statusCode ?? 'CLIENT_ERROR', message: rest.join(': ') } };
    if (logged) endPhase(logged);
    enter('FINALIZING');
    return 'FAILED';
  };

  async function execute(): Promise<PhaseStatus> {
    const logDenied = await provision();
    if (logDenied) return failNow(logDenied);
    let prepared: { spec: Buildspec; env: Record<string, string> };
    try {
      prepared = await downloadSource_();
    } catch (e) {
      if (!(e instanceof SourceError || e instanceof BuildspecError || e instanceof SecretError)) throw e;
      return failNow(e.message, 'DOWNLOAD_SOURCE');
    }
    endPhase('DOWNLOAD_SOURCE');
    const { spec, env } = prepared;
    shell = createShellSession(dir, srcDir, env);

    let buildFailed = false;
    // Where an ABORT failure of each phase leads (CodeBuild "build phase transitions").
    const onAbort: Record<string, PhaseType> = { INSTALL: 'FINALIZING', PRE_BUILD: 'FINALIZING', BUILD: 'POST_BUILD', POST_BUILD: 'UPLOAD_ARTIFACTS' };
    let next: PhaseType = 'INSTALL';
    for (const [index, [phase, name]] of COMMAND_PHASES.entries()) {
      if (phase !== next) continue;
      enter(phase);
      container(`Entering phase ${phase}`);
      current = await commandPhase(spec, name, !buildFailed);
      endPhase(phase);
      const following = COMMAND_PHASES[index + 1]?.[0] ?? 'UPLOAD_ARTIFACTS';
      if (current.status === 'FAILED') buildFailed = true;
      next = current.status === 'FAILED' && spec.phases[name].onFailure === 'ABORT' ? (onAbort[phase] ?? 'FINALIZING') : following;
    }
    if (next === 'UPLOAD_ARTIFACTS') {
      enter('UPLOAD_ARTIFACTS');
      container('Phase complete: UPLOAD_ARTIFACTS State: SUCCEEDED');
      container('Phase context status code:  Message: ');
    }
    if (spec.exportedVariables.length > 0) {
      const values = await shell.variables(spec.exportedVariables);
      build.exported = spec.exportedVariables.map((name) => ({ name, value: values[name] ?? '' }));
    }
    enter('FINALIZING');
    return buildFailed ? 'FAILED' : 'SUCCEEDED';
  }

  const finished = (async () => {
    let status: PhaseStatus;
    try {
      status = await execute();
    } catch (e) {
      if (!(e instanceof Interrupted)) {
        container(`Phase context status code: FAULT Message: fake CodeBuild failed: ${(e as Error).message}`);
        current = { status: 'FAULT', context: { statusCode: 'FAULT', message: (e as Error).message } };
        status = 'FAULT';
      } else {
        current = { status: e.status, context: { statusCode: e.status === 'STOPPED' ? 'BUILD_STOPPED' : 'BUILD_TIMED_OUT', message: e.status === 'STOPPED' ? 'Build was stopped' : 'Build has timed out. ' } };
        status = e.status;
      }
      if (build.logsStarted) container(e instanceof Interrupted ? `Phase complete: ${build.currentPhase} State: ${e.status}` : 'Build failed');
      if (build.currentPhase !== 'FINALIZING') enter('FINALIZING');
    } finally {
      clearTimeout(timer);
      await shell?.kill();
    }
    enter('COMPLETED');
    build.complete(status);
  })();

  return { finished, stop: () => interrupt('STOPPED') };
}

/** CodeBuild reads the buildspec from the override/project text, or a file in the source (default buildspec.yml). */
function readBuildspec(buildspec: string | undefined, srcDir: string): string {
  if (buildspec && (buildspec.includes('\n') || /^\s*version\s*:/.test(buildspec))) return buildspec;
  const file = resolve(srcDir, buildspec || 'buildspec.yml');
  if (!existsSync(file)) throw new BuildspecError(`YAML_FILE_ERROR: stat ${file}: no such file or directory`);
  return readFileSync(file, 'utf8');
}

/** 2026/11/22 10:00:00.123, the agent's timestamp format (UTC). */
function containerTime(d: Date): string {
  const iso = d.toISOString();
  return `${iso.slice(0, 10).replace(/-/g, '/')} ${iso.slice(11, 23)}`;
}
