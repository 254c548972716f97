/**
 * The outcome of a build command: the image (or the index over the platforms' images) recorded in the report
 * files, and the lines that say how it went. In: the finished builds. Out: the exit code.
 */
import type { Clients } from '../aws/clients';
import type { Finished } from '../follow/builds';
import type { ContextToUpload, Upload } from '../context/upload';
import type { Settings } from '../inputs/settings';
import type { BuildRecord, ContextSummary } from '../report/record';
import type { Output } from '../shared/console';
import { ExitCode, ReportError } from '../shared/errors';
import { loadAws } from './connect';

export async function finish(settings: Settings, finished: Finished[], archive: ContextSummary, upload: Upload, clients: Clients, out: Output, tags: string[]): Promise<ExitCode> {
  const aws = await loadAws();
  const record = finished.length === 1 ? aws.buildRecord(settings, finished[0]!.build, archive, upload, aws.consoleUrl(settings.region, finished[0]!.build)) : await platformsRecord(settings, finished, archive, upload, clients, out, tags);
  return report(settings, record, await sign(settings, record, clients, out), out, () => {
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
export async function finishReused(settings: Settings, context: ContextToUpload, reused: { digest: string; mediaType: string }, clients: Clients, out: Output): Promise<ExitCode> {
  const aws = await loadAws();
  out.info(`Unchanged build inputs: ${settings.image.name}@${reused.digest} was built from them already; no CodeBuild build`);
  const archive = { sha256: context.digest, size: 0, fileCount: context.fileCount };
  const record = aws.reusedRecord(settings, reused, archive);
  return report(settings, record, await sign(settings, record, clients, out), out, () => undefined);
}

/**
 * Writes the reports and prints the outcome: `unsigned` is why a pushed image is not signed; `explainFailure` adds
 * what went wrong when there is no image.
 */
async function report(settings: Settings, record: BuildRecord, unsigned: string | undefined, out: Output, explainFailure: () => void): Promise<ExitCode> {
  const aws = await loadAws();
  try {
    aws.writeReports(settings.reportDir, record, settings.dotenvPrefix);
  } catch (e) {
    if (!(e instanceof ReportError)) throw e;
    // The build ran (and may have pushed): not exit 2, which says nothing was sent.
    if (record.imageRef) out.info(`Image: ${record.imageRef}`);
    if (unsigned) out.error(unsigned);
    out.error(`${e.message}. Later jobs do not get this build's dotenv variables.`);
    out.info(`Build status: ${record.status}, reports not written`);
    return ExitCode.BuildFailed;
  }
  if (record.status === 'SUCCEEDED' && record.imageRef) {
    out.info(`Image: ${record.imageRef}`);
    out.info(`Tags: ${settings.tags.map((t) => `${settings.image.name}:${t}`).join(' ')}`);
    if (unsigned) {
      out.error(unsigned);
      out.info(`Build status: ${record.status}, image not signed`);
      return ExitCode.BuildFailed;
    }
    out.info(`Build status: ${record.status}`);
    return ExitCode.Success;
  }
  explainFailure();
  out.info(`Build status: ${record.status === 'SUCCEEDED' ? 'SUCCEEDED without a digest' : record.status}`);
  return ExitCode.BuildFailed;
}

/**
 * With sign_with, signs the image the build pushed (and each platform's) and records the signatures. Returns the
 * error line when signing failed: the image is pushed all the same, so the reports are still written.
 */
async function sign(settings: Settings, record: BuildRecord, clients: Clients, out: Output): Promise<string | undefined> {
  if (!settings.signWith || record.status !== 'SUCCEEDED' || !record.digest) return undefined;
  const aws = await loadAws();
  const digests = [record.digest, ...(record.platforms ?? []).flatMap((p) => (p.digest ? [p.digest] : []))];
  const { signatures, failure } = await aws.signImage(settings, settings.signWith, digests, clients, out);
  record.signatures = signatures;
  if (!failure) return undefined;
  return `${settings.image.name}@${failure.digest} is pushed but unsigned: ${failure.error.message.replace(/\n/g, '; ')}`;
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
