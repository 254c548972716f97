import { randomUUID } from 'node:crypto';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { resolveBuildspec } from './build/buildspec';
import { isInside } from './inputs/checkout-paths';
import type { Clients } from './aws/clients';
import { consoleOutput, type Output } from './shared/console';
import { type ContextEntry, listContext } from './context/listing';
import { AwsStepError, awsStep, ContextError, ExitCode, InputError, ReportError } from './shared/errors';
import { collectSettings, readSettings } from './inputs/inputs';
import { FilePool } from './context/pack-files';
import type { Finished } from './follow/builds';
import type { BuildRecord, ContextSummary, StartMarker } from './report/report';
import type { Settings } from './inputs/settings';
import { escapeControls, shown } from './shared/shown';
import type { ContextToUpload, Upload } from './context/upload';
import { archiveSizeBound, hashContext, packContextTo } from './context/zip';

/**
 * The modules that load the AWS SDK (src/aws-part.ts), compiled and evaluated on first use (dist/index.js carries
 * them as a string until then, see scripts/bundle.mjs). Parsing and evaluating them took most of the time
 * before the first output line; now they load after it, while the workers hash the context.
 */
const loadAws = () => import('./aws-part');

export const USAGE = `Usage: node index.js [build | stop | --help]

  build    (default) pack the build context, run the build on AWS CodeBuild, follow it and write the reports
  stop     stop the build this job started (the template's after_script runs it when a job is cancelled)
  --help   print this text

Settings come from CODEBUILD_IMAGE_* variables (the component's inputs) and GitLab's CI_* variables; see README.md.
Exit codes: 0 success, 1 the build did not succeed (or its reports could not be written), 2 bad input (nothing
sent to AWS), 3 AWS, network or machine error.`;

/** Runs `index.js [build|stop|--help]` and returns the process exit code; never throws. */
export async function run(argv: string[], env: NodeJS.ProcessEnv, out: Output = consoleOutput()): Promise<ExitCode> {
  try {
    const command = readCommand(argv);
    if (command === 'help') {
      for (const line of USAGE.split('\n')) out.info(line);
      return ExitCode.Success;
    }
    const checkout = env.CI_PROJECT_DIR ?? process.cwd();
    if (command === 'stop') {
      const settings = readSettings(env, checkout);
      return await stop(settings, await connect(settings, out), out);
    }
    const pool = new FilePool();
    try {
      // Inputs, the buildspec file and the context are all checked before any AWS call, and reported together.
      const { settings, entries } = await checkEverything(env, checkout, out);
      const buildspec = resolveBuildspec(settings);
      // Recorded before anything is sent (a report_dir that cannot be written is bad input), and marked
      // requested just before StartBuild, so `stop` can find the build even if StartBuild never answers.
      const marker = randomUUID();
      const naming = nameContext(entries, pool);
      try {
        const aws = await loadAws();
        aws.writeStartMarker(settings.reportDir, { marker, projectNames: aws.buildTargets(settings).map((t) => t.settings.projectName), requested: false });
      } catch (e) {
        await naming.catch(() => undefined);
        throw e;
      }
      const context = await naming;
      out.sectionEnd('context');
      return await build(settings, buildspec, context, marker, await connect(settings, out), out);
    } finally {
      await pool.close();
    }
  } catch (e) {
    return fail(e, out);
  }
}

function readCommand(argv: string[]): 'build' | 'stop' | 'help' {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { help: { type: 'boolean', short: 'h' } } });
  const command = positionals[0] ?? 'build';
  if (values.help || command === 'help') return 'help';
  if (command !== 'build' && command !== 'stop') {
    throw new InputError([{ input: 'command', message: `unknown command ${shown(command)}: use "build" (default), "stop" or --help` }]);
  }
  return command;
}

/** Settings and the context's listing, or one InputError holding every problem found in either. */
async function checkEverything(env: NodeJS.ProcessEnv, checkout: string, out: Output): Promise<{ settings: Settings; entries: ContextEntry[] }> {
  const { settings, problems } = collectSettings(env, checkout);
  let entries: ContextEntry[] = [];
  if (settings.contextDir) {
    // The job's first line, as early as it can be; with bad input, the problems are the first lines.
    if (problems.length === 0) out.sectionStart('context', `Reading the build context ${settings.contextDir}`, true);
    try {
      entries = await listContext(settings.contextDir, out, { dockerfile: settings.dockerfile, skipDirs: reportDirsIn(settings) });
    } catch (e) {
      if (!(e instanceof ContextError)) throw e;
      problems.push(...e.problems.map((message) => ({ input: 'context', message })));
    }
  }
  if (problems.length > 0) throw new InputError(problems);
  return { settings, entries };
}

/**
 * This program's report directories inside the context: its own report_dir, and `.codebuild-image` of the
 * checkout, where the template keeps every job's reports (and where artifacts of earlier jobs land).
 * Shipping them would change the context with every run and break both the skipped upload and Docker's cache.
 */
function reportDirsIn(s: Settings): string[] {
  const dirs = [s.reportDir, s.checkoutDir && join(s.checkoutDir, '.codebuild-image')].filter((d) => d && d !== s.contextDir && isInside(s.contextDir, d));
  return [...new Set(dirs.map((d) => relative(s.contextDir, d)))];
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
 * Hashes every file of the listing on the workers (reading them all, so an unreadable file is bad input found
 * before any AWS call). The digest names the archive; it is packed later, only if not uploaded yet, while
 * uploading.
 */
async function nameContext(entries: ContextEntry[], pool: FilePool): Promise<ContextToUpload> {
  const { digest, fileHashes } = await hashContext(entries, pool);
  return {
    digest,
    fileCount: entries.filter((e) => e.kind !== 'directory').length,
    maxSize: archiveSizeBound(entries),
    write: (target) => packContextTo(entries, target, { pool, expected: fileHashes }),
  };
}

async function build(settings: Settings, buildspec: string, context: ContextToUpload, marker: string, clients: Clients, out: Output): Promise<ExitCode> {
  const aws = await loadAws();
  const inputsTag = settings.skipUnchanged ? aws.inputsTag(settings, context.digest) : undefined;
  if (inputsTag) {
    const reused = await aws.reuseUnchanged(settings, inputsTag, clients);
    if (reused) return finishReused(settings, context, reused, out);
    out.info(`No image was built from these inputs yet (${inputsTag}): building one`);
  }
  // The build's own tags: with skip_unchanged also the inputs tag, which records its inputs on the image.
  const tags = inputsTag ? [...settings.tags, inputsTag] : settings.tags;
  const upload = await aws.uploadContext(clients.s3, context, settings.s3Bucket, settings.s3Prefix, out);
  const archive = { sha256: context.digest, size: upload.size, fileCount: context.fileCount };
  // Listen for cancellation before the builds exist, so a cancel during StartBuild still stops them.
  const watcher = aws.watchCancellation({ out, job: settings.gitlab });
  try {
    const targets = aws.buildTargets({ ...settings, tags });
    // From here on something was sent: a report file that cannot be written is a warning, never exit 2, and
    // never leaves builds running unwatched.
    const keep = (what: string, write: () => void) => {
      try {
        write();
      } catch (e) {
        if (!(e instanceof ReportError)) throw e;
        out.warn(`${e.message}: after_script cannot find ${what}; the job follows it and stops it itself when cancelled.`);
      }
    };
    await aws.putJobToken(clients.ssm, settings, out);
    let finished: Finished[];
    try {
      keep('the build by its marker', () =>
        aws.writeStartMarker(settings.reportDir, { marker, projectNames: targets.map((t) => t.settings.projectName), requested: true }),
      );
      const started = await aws.startBuilds({ once: clients.codebuildOnce, polling: clients.codebuild }, targets, upload, buildspec, marker, out, (ids) =>
        keep('the build', () => aws.writeBuildIds(settings.reportDir, ids)),
      );
      const abort = new AbortController();
      void watcher.cancelled.then((reason) => abort.abort(reason));
      const deps = { codebuild: clients.codebuild, codebuildOnce: clients.codebuildOnce, logs: clients.logs, reportDir: settings.reportDir };
      finished = await aws.followBuilds(deps, started, abort.signal).catch((e: unknown) => abandon(clients, started.map((s) => s.id), e, out));
    } finally {
      // The builds have ended (or never started): they no longer need the job token.
      await aws.deleteJobToken(clients.ssm, settings, out);
    }
    return await finish(settings, finished, archive, upload, clients, out, tags);
  } finally {
    watcher.dispose();
  }
}

/** Following failed for good: stop the builds rather than leave them running unwatched, then fail the job. */
async function abandon(clients: Clients, buildIds: string[], e: unknown, out: Output): Promise<never> {
  const { stopBuild } = await loadAws();
  out.error(`Cannot follow build ${buildIds.join(', ')} any longer: stopping it, so that it does not run on unwatched.`);
  for (const buildId of buildIds) {
    try {
      await stopBuild(clients.codebuildOnce, buildId, out, { timeoutMs: 20_000, checkWith: clients.codebuild });
    } catch (stopError) {
      const why = stopError instanceof AwsStepError ? stopError.message.split('\n')[0] : String(stopError);
      out.error(`Build ${buildId} keeps running in CodeBuild: stopping it failed too (${why}).`);
    }
  }
  throw e;
}

async function finish(settings: Settings, finished: Finished[], archive: ContextSummary, upload: Upload, clients: Clients, out: Output, tags: string[]): Promise<ExitCode> {
  const aws = await loadAws();
  const record = finished.length === 1 ? aws.buildRecord(settings, finished[0]!.build, archive, upload, aws.consoleUrl(settings.region, finished[0]!.build)) : await platformsRecord(settings, finished, archive, upload, clients, out, tags);
  return report(settings, record, out, () => {
    if (record.status === 'SUCCEEDED') {
      out.error(
        `The build succeeded but exported no valid ${settings.digestVariable}: ` +
          `a custom buildspec must list it under env: exported-variables and set it to the pushed digest (sha256:…).`,
      );
    }
    for (const f of finished) {
      const queueLimit = aws.queueLimitFailure(f.build, settings.region);
      if (queueLimit) out.error(queueLimit);
    }
  });
}

/** An image built from the same inputs was found and put under the tags: no build. */
async function finishReused(settings: Settings, context: ContextToUpload, reused: { digest: string; mediaType: string }, out: Output): Promise<ExitCode> {
  const aws = await loadAws();
  out.info(`Unchanged build inputs: ${settings.image.name}@${reused.digest} was built from them already; no CodeBuild build`);
  const archive = { sha256: context.digest, size: 0, fileCount: context.fileCount };
  return report(settings, aws.reusedRecord(settings, reused, archive), out, () => undefined);
}

/** Writes the reports and prints the outcome; `explainFailure` adds what went wrong when there is no image. */
async function report(settings: Settings, record: BuildRecord, out: Output, explainFailure: () => void): Promise<ExitCode> {
  const aws = await loadAws();
  try {
    aws.writeReports(settings.reportDir, record, settings.dotenvPrefix);
  } catch (e) {
    if (!(e instanceof ReportError)) throw e;
    // The build ran (and may have pushed): not exit 2, which says nothing was sent.
    if (record.imageRef) out.info(`Image: ${record.imageRef}`);
    out.error(`${e.message}. Later jobs do not get this build's dotenv variables.`);
    out.info(`Build status: ${record.status}, reports not written`);
    return ExitCode.BuildFailed;
  }
  if (record.status === 'SUCCEEDED' && record.imageRef) {
    out.info(`Image: ${record.imageRef}`);
    out.info(`Tags: ${settings.tags.map((t) => `${settings.image.name}:${t}`).join(' ')}`);
    out.info(`Build status: ${record.status}`);
    return ExitCode.Success;
  }
  explainFailure();
  out.info(`Build status: ${record.status === 'SUCCEEDED' ? 'SUCCEEDED without a digest' : record.status}`);
  return ExitCode.BuildFailed;
}

/**
 * A multi-platform image: when every platform's build pushed its image, the index over them goes under every
 * tag; otherwise the failing platform and phase are named.
 */
async function platformsRecord(settings: Settings, finished: Finished[], archive: ContextSummary, upload: Upload, clients: Clients, out: Output, tags: string[]): Promise<BuildRecord> {
  const aws = await loadAws();
  const builds = finished.map((f) => ({ platform: f.platform ?? '', settings: f.settings, build: f.build, consoleUrl: aws.consoleUrl(settings.region, f.build) }));
  const failed = aws.failedBuild(builds);
  const images = builds.map((b) => ({ platform: b.platform, digest: aws.exportedDigest(settings, b.build) ?? '' }));
  let index: { digest: string; mediaType: string } | undefined;
  if (failed) {
    const phase = aws.failedPhase(failed.build)?.phaseType;
    out.error(`The ${failed.platform} build ${failed.build.buildStatus ?? 'failed'}${phase ? ` in ${phase}` : ''}: no image index was made.`);
  } else if (images.some((i) => !i.digest)) {
    out.error(`The ${images.find((i) => !i.digest)?.platform ?? ''} build exported no valid ${settings.digestVariable}: no image index was made.`);
  } else {
    index = await aws.pushImageIndex(settings, images, tags, clients);
    out.info(`Image index ${index.digest} over ${images.map((i) => i.platform).join(', ')}`);
  }
  return aws.platformsRecord(settings, builds, index, archive, upload);
}

/**
 * `index.js stop`: the template's after_script stops a build the killed job left running, and deletes the job
 * token's parameter (src/registry/job-token.ts) the killed job could not delete. StopBuild goes
 * first, without reading the build (a throttled read must not keep it from being stopped). A build whose
 * StartBuild answer never arrived is found by the marker recorded before StartBuild.
 */
async function stop(settings: Settings, clients: Clients, out: Output): Promise<ExitCode> {
  const { deleteJobToken, readBuildIds, readStartMarker } = await loadAws();
  const buildIds = readBuildIds(settings.reportDir);
  const start = buildIds.length > 0 ? undefined : readStartMarker(settings.reportDir);
  // The job token is written just before the marker says StartBuild was requested: before that, there is none.
  const written = buildIds.length > 0 || start?.requested === true;
  try {
    return await stopBuilds(buildIds, start, clients, out);
  } finally {
    if (written) await deleteJobToken(clients.ssm, settings, out);
  }
}

/** Stops the builds recorded by id, or else the one found by the start marker of a requested StartBuild. */
async function stopBuilds(recorded: string[], start: StartMarker | undefined, clients: Clients, out: Output): Promise<ExitCode> {
  const { findBuildByMarker, stopBuild } = await loadAws();
  const buildIds = [...recorded];
  const failures: unknown[] = [];
  if (start?.requested) {
    out.info("The job ended before StartBuild answered: looking for the build by this job's marker");
    const found = await Promise.allSettled(start.projectNames.map((project) => findBuildByMarker(clients.codebuildOnce, project, start.marker)));
    for (const r of found) {
      if (r.status === 'fulfilled' && r.value) buildIds.push(r.value);
      if (r.status === 'rejected') failures.push(r.reason);
    }
  }
  if (buildIds.length === 0 && failures.length === 0) {
    out.info('No build was started by this job: nothing to stop.');
    return ExitCode.Success;
  }
  // Every build is stopped even when stopping another one failed.
  const stopped = await Promise.allSettled(buildIds.map((id) => stopBuild(clients.codebuildOnce, id, out, { checkWith: clients.codebuild })));
  stopped.forEach((r, i) => {
    if (r.status === 'fulfilled') out.info(`Build ${buildIds[i]}: ${r.value.buildStatus ?? 'stopping'}`);
    else failures.push(r.reason);
  });
  if (failures.length === 0) return ExitCode.Success;
  for (const e of failures.slice(1)) out.error(e instanceof Error ? e.message.split('\n')[0] ?? '' : String(e));
  throw failures[0];
}

function fail(e: unknown, out: Output): ExitCode {
  if (e instanceof InputError) {
    // A problem may span lines (a list of paths); every line is printed on its own, escaped.
    for (const p of e.problems) for (const line of `input ${p.input}: ${p.message}`.split('\n')) out.error(escapeControls(line));
    return ExitCode.BadInput;
  }
  if (e instanceof ContextError || e instanceof ReportError) {
    for (const line of e.message.split('\n')) out.error(escapeControls(line));
    return ExitCode.BadInput;
  }
  if (e instanceof AwsStepError) {
    for (const line of e.message.split('\n')) out.error(line);
    return ExitCode.AwsError;
  }
  if (e instanceof TypeError && 'code' in e && typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS_')) {
    out.error(escapeControls(`${e.message.split('\n')[0]}; see --help`));
    return ExitCode.BadInput;
  }
  if (e instanceof Error && 'syscall' in e && 'code' in e) {
    // A failure of the machine running the job (e.g. no space left); the message names the call and path.
    out.error(escapeControls(`${e.message.split('\n')[0]} (on the machine running the job)`));
    return ExitCode.AwsError;
  }
  out.error(`Unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  return ExitCode.AwsError;
}
