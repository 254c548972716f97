/**
 * `index.js build`: the job's flow. Inputs and the context are checked (nothing sent yet), the context is named
 * by its digest and uploaded, the builds are started and followed, and the outcome is reported (finish.ts).
 * In: the job's environment. Out: the exit code, the report files and the job log.
 */
import { randomUUID } from 'node:crypto';
import { join, relative } from 'node:path';
import type { Clients } from '../aws/clients';
import { resolveBuildspec } from '../build/buildspec';
import { requestProblems } from '../build/request-limits';
import { type ContextEntry, listContext } from '../context/listing';
import { FilePool } from '../context/pack-files';
import { EarlyPacking } from '../context/early';
import type { ContextToUpload } from '../context/upload';
import { hashContext } from '../context/prepare';
import { archiveSizeBound, packContextTo, workersFor } from '../context/zip';
import type { Finished } from '../follow/builds';
import { isInside } from '../inputs/checkout-paths';
import { collectSettings } from '../inputs/read-settings';
import { secretArgHints } from '../inputs/secret-arg-hint';
import type { Settings } from '../inputs/settings';
import type { Output } from '../shared/console';
import { AwsStepError, ContextError, type ExitCode, InputError, ReportError } from '../shared/errors';
import { connect, loadAws } from './connect';
import { finish, finishReused } from './finish';

export async function buildCommand(env: NodeJS.ProcessEnv, checkout: string, out: Output): Promise<ExitCode> {
  let pool: FilePool | undefined;
  let context: ContextToUpload | undefined;
  try {
    // Inputs, the buildspec file, the request and the context are all checked before any AWS call, and reported together.
    const { settings, entries } = await checkEverything(env, checkout, out);
    // Recorded before anything is sent (a report_dir that cannot be written is bad input), and marked
    // requested just before StartBuild, so `stop` can find the build even if StartBuild never answers.
    const marker = randomUUID();
    pool = new FilePool(workersFor(entries));
    const naming = nameContext(entries, pool);
    try {
      const aws = await loadAws();
      aws.writeStartMarker(settings.reportDir, { marker, projectNames: aws.buildTargets(settings).map((t) => t.settings.projectName), requested: false });
    } catch (e) {
      await naming.catch(() => undefined);
      throw e;
    }
    context = await naming;
    out.sectionEnd('context');
    for (const line of secretArgHints(settings)) out.warn(line);
    const connecting = connect(settings, out);
    // Made while the job signs in, well after the first line: generating it loads yaml (shared/yaml.ts).
    const buildspec = resolveBuildspec(settings);
    return await build(settings, buildspec, context, marker, await connecting, out);
  } finally {
    // Packing started early and not needed (or an error on the way) stops before its workers do.
    await context?.cancel();
    await pool?.close();
  }
}

/** Settings (with a buildspec file's text) and the context's listing, or one InputError holding every problem found in any. */
async function checkEverything(env: NodeJS.ProcessEnv, checkout: string, out: Output): Promise<{ settings: Settings; entries: ContextEntry[] }> {
  const { settings, problems } = collectSettings(env, checkout);
  // The whole StartBuild request, once its inputs are valid: AWS's limits on what it carries.
  if (problems.length === 0) problems.push(...requestProblems(settings));
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

/**
 * Hashes every file of the listing on the workers (reading them all, so an unreadable file is bad input found
 * before any AWS call). The digest names the archive. Packing starts right away (early.ts): what it packs
 * waits on this machine until S3 is found not to hold the archive yet, and is then uploaded as the rest is packed.
 */
async function nameContext(entries: ContextEntry[], pool: FilePool): Promise<ContextToUpload> {
  const { digest, fileHashes } = await hashContext(entries, pool);
  const early = new EarlyPacking((target) => packContextTo(entries, target, { pool, expected: fileHashes }), PACKED_AHEAD);
  return {
    digest,
    fileCount: entries.filter((e) => e.kind !== 'directory').length,
    maxSize: archiveSizeBound(entries),
    write: (target) => early.write(target),
    cancel: () => early.cancel(),
  };
}

/** Archive bytes packed before the upload starts, at most (they are held in memory meanwhile). */
const PACKED_AHEAD = 16 * 1024 * 1024;

async function build(settings: Settings, buildspec: string, context: ContextToUpload, marker: string, clients: Clients, out: Output): Promise<ExitCode> {
  const aws = await loadAws();
  const inputsTag = settings.skipUnchanged ? aws.inputsTag(settings, context.digest) : undefined;
  if (inputsTag) {
    const reused = await aws.reuseUnchanged(settings, inputsTag, clients);
    if (reused) {
      void context.cancel(); // awaited before the workers stop, in buildCommand
      return finishReused(settings, context, reused, clients, out);
    }
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
      const deps = { codebuild: clients.codebuild, codebuildOnce: clients.codebuildOnce, logs: clients.logs, liveTail: clients.liveTail, reportDir: settings.reportDir };
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
