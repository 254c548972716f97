import { parseArgs } from 'node:util';
import type { Build } from '@aws-sdk/client-codebuild';
import type { Clients } from './clients';
import { consoleOutput, type Output } from './console';
import { listContext } from './context';
import { AwsStepError, awsStep, ContextError, ExitCode, InputError } from './errors';
import { readSettings } from './inputs';
import { FilePool } from './pack-files';
import type { ContextSummary } from './report';
import type { Settings } from './settings';
import type { ContextToUpload, Upload } from './upload';
import { archiveSizeBound, hashContext, packContextTo } from './zip';

/**
 * The modules that load the AWS SDK (src/aws.ts), compiled and evaluated on first use (dist/index.js carries
 * them as a string until then, see scripts/bundle.mjs). Parsing and evaluating them took most of the time
 * before the first output line; now they load after it, while the workers hash the context.
 */
const loadAws = () => import('./aws');

/** Runs `index.js [build|stop]` and returns the process exit code; never throws. */
export async function run(argv: string[], env: NodeJS.ProcessEnv, out: Output = consoleOutput()): Promise<ExitCode> {
  try {
    const { positionals } = parseArgs({ args: argv, allowPositionals: true, strict: true });
    const command = positionals[0] ?? 'build';
    if (command !== 'build' && command !== 'stop') {
      throw new InputError([{ input: 'command', message: `unknown command "${command}": use "build" (default) or "stop"` }]);
    }
    const checkout = env.CI_PROJECT_DIR ?? process.cwd();
    const settings = readSettings(env, checkout);
    if (command === 'stop') return await stop(settings, await connect(settings, out), out);
    // The buildspec and the context are read before any AWS call: a problem with either is bad input.
    out.sectionStart('context', `Reading the build context ${settings.contextDir}`, true);
    // Loaded after the first line, like loadAws: yaml is a large part of what the program evaluates.
    const buildspec = (await import('./buildspec')).resolveBuildspec(settings, checkout);
    const pool = new FilePool();
    try {
      const naming = nameContext(settings, pool, out); // lists, then hashes on the workers…
      void loadAws().catch(() => undefined); // …while this thread loads the AWS SDK (a failure surfaces where awaited)
      const context = await naming;
      out.sectionEnd('context');
      return await build(settings, buildspec, context, await connect(settings, out), out);
    } finally {
      await pool.close();
    }
  } catch (e) {
    return fail(e, out);
  }
}

async function connect(settings: Settings, out: Output): Promise<Clients> {
  const { resolveCredentials, createClients, explainAssumeRoleFailure } = await loadAws();
  const { provider, identity } = resolveCredentials(settings, out);
  const clients = createClients(settings.region, provider);
  await awsStep(`Getting AWS credentials (${identity})`, clients.credentials, (e) => explainAssumeRoleFailure(e, settings));
  out.info(`AWS identity: ${identity}, region ${settings.region}`);
  return clients;
}

/**
 * Lists the context and hashes every file (reading them all, so an unreadable file is bad input found before
 * any AWS call). The digest names the archive; it is packed later, only if not uploaded yet, while uploading.
 */
async function nameContext(settings: Settings, pool: FilePool, out: Output): Promise<ContextToUpload> {
  const entries = await listContext(settings.contextDir, out, { dockerfile: settings.dockerfile });
  const { digest, fileHashes } = await hashContext(entries, pool);
  return {
    digest,
    fileCount: entries.filter((e) => e.kind !== 'directory').length,
    maxSize: archiveSizeBound(entries),
    write: (target) => packContextTo(entries, target, { pool, expected: fileHashes }),
  };
}

async function build(settings: Settings, buildspec: string, context: ContextToUpload, clients: Clients, out: Output): Promise<ExitCode> {
  const { uploadContext, watchCancellation, startBuild, startBuildInput, writeBuildId, consoleUrl, followBuild, stopBuild, phaseFailure } = await loadAws();
  const upload = await uploadContext(clients.s3, context, settings.s3Bucket, settings.s3Prefix, out);
  const archive = { sha256: context.digest, size: upload.size, fileCount: context.fileCount };
  // Listen for cancellation before the build exists, so a cancel during StartBuild still stops it.
  const watcher = watchCancellation({ out, job: settings.gitlab });
  try {
    const started = await startBuild(clients.codebuild, startBuildInput(settings, upload, buildspec));
    const buildId = started.id ?? '';
    writeBuildId(settings.reportDir, buildId);
    out.info(`CodeBuild build ${buildId}`);
    out.info(`Console: ${consoleUrl(settings.region, started)}`);

    const abort = new AbortController();
    void watcher.cancelled.then((reason) => abort.abort(reason));
    let final = await followBuild({ codebuild: clients.codebuild, logs: clients.logs, out }, buildId, abort.signal);
    if (abort.signal.aborted && !final.buildComplete) {
      out.warn(`Job cancelled (${String(abort.signal.reason)}): stopping build ${buildId}`);
      final = await stopBuild(clients.codebuild, buildId, out);
      // The follower left before this phase ended, so it did not print it (it does for every other failure).
      const interrupted = final.phases?.find((p) => p.phaseStatus && p.phaseStatus !== 'SUCCEEDED');
      if (interrupted) out.error(phaseFailure(interrupted));
    }
    return await finish(settings, final, archive, upload, out);
  } finally {
    watcher.dispose();
  }
}

async function finish(settings: Settings, final: Build, archive: ContextSummary, upload: Upload, out: Output): Promise<ExitCode> {
  const { buildRecord, consoleUrl, writeReports } = await loadAws();
  const record = buildRecord(settings, final, archive, upload, consoleUrl(settings.region, final));
  writeReports(settings.reportDir, record, settings.dotenvPrefix);
  if (record.status === 'SUCCEEDED' && record.imageRef) {
    out.info(`Image: ${record.imageRef}`);
    out.info(`Tags: ${settings.tags.map((t) => `${settings.image.name}:${t}`).join(' ')}`);
    out.info(`Build status: ${record.status}`);
    return ExitCode.Success;
  }
  if (record.status === 'SUCCEEDED') {
    out.error(
      `The build succeeded but exported no valid ${settings.digestVariable}: ` +
        `a custom buildspec must list it under env: exported-variables and set it to the pushed digest (sha256:…).`,
    );
  }
  out.info(`Build status: ${record.status === 'SUCCEEDED' ? 'SUCCEEDED without a digest' : record.status}`);
  return ExitCode.BuildFailed;
}

/** `index.js stop`: the template's after_script stops a build the killed job left running. */
async function stop(settings: Settings, clients: Clients, out: Output): Promise<ExitCode> {
  const { readBuildId, getBuild, stopBuild } = await loadAws();
  const buildId = readBuildId(settings.reportDir);
  if (!buildId) {
    out.info('No build was started by this job: nothing to stop.');
    return ExitCode.Success;
  }
  const current = await getBuild(clients.codebuild, buildId);
  if (current.buildComplete) {
    out.info(`Build ${buildId} already finished (${current.buildStatus}): nothing to stop.`);
    return ExitCode.Success;
  }
  const stopped = await stopBuild(clients.codebuild, buildId, out);
  out.info(`Build ${buildId}: ${stopped.buildStatus}`);
  return ExitCode.Success;
}

function fail(e: unknown, out: Output): ExitCode {
  if (e instanceof InputError) {
    for (const p of e.problems) out.error(`input ${p.input}: ${p.message}`);
    return ExitCode.BadInput;
  }
  // report.ts's ReportError, by name: report.ts is loaded lazily (loadAws), maybe not at all before this error.
  if (e instanceof ContextError || (e instanceof Error && e.name === 'ReportError')) {
    out.error(e.message);
    return ExitCode.BadInput;
  }
  if (e instanceof AwsStepError) {
    for (const line of e.message.split('\n')) out.error(line);
    return ExitCode.AwsError;
  }
  if (e instanceof TypeError && 'code' in e && e.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    out.error(`${e.message}: the program takes no options, only the command "build" or "stop"`);
    return ExitCode.BadInput;
  }
  out.error(`Unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  return ExitCode.AwsError;
}
