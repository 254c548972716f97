/**
 * Report files in report_dir: `build-id` as soon as the build starts (for `stop`), then `build.env`
 * (artifacts:reports:dotenv), `build.json` (the full record) and `annotations.json` (artifacts:reports:annotations).
 * Every file is written to a temporary name and renamed, so GitLab never collects a half-written report.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Build } from '@aws-sdk/client-codebuild';
import { MEDIA_TYPE_VARIABLE } from '../build/buildspec';
import { consoleHost, exportedVariable } from '../build/codebuild';
import { ReportError } from '../shared/errors';
import { INDEX_TYPES } from '../registry/distribution';
import type { Settings } from '../inputs/settings';
import type { Upload } from '../context/upload';
import type { Archive } from '../context/zip';

export const BUILD_ID_FILE = 'build-id';
/** Written before StartBuild: the marker the build will carry, so `stop` finds a build whose id never arrived. */
export const START_FILE = 'build-start';
export const DOTENV_FILE = 'build.env';
export const RECORD_FILE = 'build.json';
export const ANNOTATIONS_FILE = 'annotations.json';

const DIGEST = /^sha256:[0-9a-f]{64}$/;
/** GitLab rejects dotenv reports of 5 KB or more; stay clearly below. */
const DOTENV_MAX_BYTES = 4096;

export interface PhaseRecord {
  phase: string;
  status: string | undefined;
  durationSeconds: number | undefined;
  message?: string;
}

/** Everything known about one build, written to build.json. */
export interface BuildRecord {
  buildId: string;
  buildArn: string | undefined;
  buildNumber: number | undefined;
  projectName: string;
  region: string;
  /** CodeBuild's buildStatus: SUCCEEDED, FAILED, FAULT, TIMED_OUT, STOPPED, IN_PROGRESS. */
  status: string;
  startTime: string | undefined;
  endTime: string | undefined;
  phases: PhaseRecord[];
  /** Repository name without tag, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/group/app`. */
  image: string;
  tags: string[];
  /** The pushed digest, when the build exported a valid one. */
  digest?: string;
  /** `image@digest`. */
  imageRef?: string;
  /** Media type of what the digest names, as the build reported it. */
  mediaType?: string;
  /** Whether the digest names an image index (attestations, or several platforms) rather than one manifest. */
  imageIndex?: boolean;
  /** Web page of the image (ECR console or Docker Hub), when there is one. */
  imageUrl?: string;
  context: { sha256: string; size: number; fileCount: number; bucket: string; key: string; uploaded: boolean };
  consoleUrl: string;
  gitlab: { jobUrl: string | undefined; pipelineUrl: string | undefined; commitSha: string | undefined };
  /** A multi-platform image: every platform's build; the fields above are the index's and the first build's. */
  platforms?: PlatformRecord[];
  /** skip_unchanged found an image built from the same inputs: it was retagged, and no build ran. */
  reused?: boolean;
}

/** One platform's build of a multi-platform image. */
export interface PlatformRecord {
  platform: string;
  buildId: string;
  projectName: string;
  status: string;
  /** The platform's own image (a manifest, or an index of it and its attestations). */
  digest?: string;
  /** The tag its build pushed it under. */
  tag: string;
  phases: PhaseRecord[];
  consoleUrl: string;
}

/** The build context as reported: `sha256` is the context digest that names the uploaded archive. */
export type ContextSummary = Pick<Archive, 'size' | 'fileCount'> & { sha256: string };

/** The digest a finished build exported, when it is one. */
export function exportedDigest(s: Settings, build: Build): string | undefined {
  const exported = exportedVariable(build, s.digestVariable)?.trim();
  return exported && DIGEST.test(exported) ? exported : undefined;
}

function phaseRecords(build: Build): PhaseRecord[] {
  return (build.phases ?? []).map((p) => {
    const message = p.contexts?.map((c) => c.message).filter(Boolean).join('; ');
    const phase: PhaseRecord = { phase: p.phaseType ?? 'UNKNOWN', status: p.phaseStatus, durationSeconds: p.durationInSeconds };
    if (message) phase.message = message;
    return phase;
  });
}

/** Of several platforms' builds, the one that failed, not one stopped because of it; undefined when all succeeded. */
export function failedBuild<T extends { build: Build }>(builds: T[]): T | undefined {
  const unsuccessful = builds.filter((b) => b.build.buildStatus !== 'SUCCEEDED');
  return unsuccessful.find((b) => b.build.buildStatus !== 'STOPPED') ?? unsuccessful[0];
}

/**
 * The record of a multi-platform image: the first build's record, with every platform's build, the status of
 * the whole (SUCCEEDED only when every build and the index succeeded) and the index as the image.
 */
export function platformsRecord(
  s: Settings,
  builds: { platform: string; settings: Settings; build: Build; consoleUrl: string }[],
  index: { digest: string; mediaType: string } | undefined,
  archive: ContextSummary,
  upload: Pick<Upload, 'bucket' | 'key' | 'uploaded'>,
): BuildRecord {
  const first = builds[0]!;
  const record = buildRecord({ ...s, digestVariable: '' }, first.build, archive, upload, first.consoleUrl);
  record.platforms = builds.map((b) => {
    const digest = exportedDigest(s, b.build);
    return {
      platform: b.platform,
      buildId: b.build.id ?? '',
      projectName: b.settings.projectName,
      status: b.build.buildStatus ?? 'UNKNOWN',
      ...(digest ? { digest } : {}),
      tag: b.settings.tags[0] ?? '',
      phases: phaseRecords(b.build),
      consoleUrl: b.consoleUrl,
    };
  });
  const failed = failedBuild(builds);
  record.status = failed ? (failed.build.buildStatus ?? 'UNKNOWN') : index ? 'SUCCEEDED' : 'FAILED';
  setImage(record, s, index);
  return record;
}

/** The record of an image reused by skip_unchanged: no build, the image found put under the tags. */
export function reusedRecord(s: Settings, image: { digest: string; mediaType: string }, archive: ContextSummary): BuildRecord {
  const record = buildRecord({ ...s, digestVariable: '' }, { buildStatus: 'SUCCEEDED' }, archive, { bucket: s.s3Bucket, key: '', uploaded: false }, '');
  record.projectName = '';
  record.reused = true;
  setImage(record, s, image);
  return record;
}

export function buildRecord(s: Settings, build: Build, archive: ContextSummary, upload: Pick<Upload, 'bucket' | 'key' | 'uploaded'>, consoleUrl: string): BuildRecord {
  const digest = exportedDigest(s, build);
  const record: BuildRecord = {
    buildId: build.id ?? '',
    buildArn: build.arn,
    buildNumber: build.buildNumber,
    projectName: build.projectName ?? s.projectName,
    region: s.region,
    status: build.buildStatus ?? 'UNKNOWN',
    startTime: build.startTime?.toISOString(),
    endTime: build.endTime?.toISOString(),
    phases: phaseRecords(build),
    image: s.image.name,
    tags: s.tags,
    context: { sha256: archive.sha256, size: archive.size, fileCount: archive.fileCount, bucket: upload.bucket, key: upload.key, uploaded: upload.uploaded },
    consoleUrl,
    gitlab: { jobUrl: s.gitlab.jobUrl, pipelineUrl: s.gitlab.pipelineUrl, commitSha: s.gitlab.commitSha },
  };
  setImage(record, s, digest ? { digest, mediaType: exportedVariable(build, MEDIA_TYPE_VARIABLE) } : undefined);
  return record;
}

/** The record's image, when there is one (digest, reference, media type), and the image's web page. */
function setImage(record: BuildRecord, s: Settings, image: { digest: string; mediaType?: string | undefined } | undefined): void {
  if (image) {
    record.digest = image.digest;
    record.imageRef = `${s.image.name}@${image.digest}`;
    if (image.mediaType) {
      record.mediaType = image.mediaType;
      record.imageIndex = INDEX_TYPES.includes(image.mediaType);
    }
  }
  const imageUrl = imagePageUrl(s, image?.digest);
  if (imageUrl) record.imageUrl = imageUrl;
}

/** The image's page: the ECR console (the image itself once the digest is known) or Docker Hub. */
export function imagePageUrl(s: Settings, digest: string | undefined): string | undefined {
  const { ecr, registry, path: repo } = s.image;
  if (ecr) {
    const base = `https://${consoleHost(ecr.region)}/ecr/repositories/private/${ecr.account}/${repo}`;
    return `${digest ? `${base}/_/image/${digest}/details` : base}?region=${ecr.region}`;
  }
  if (registry === 'docker.io') return repo.startsWith('library/') ? `https://hub.docker.com/_/${repo.slice(8)}` : `https://hub.docker.com/r/${repo}`;
  return undefined;
}

/** One id a line: a multi-platform image has a build per platform. */
export function writeBuildIds(dir: string, buildIds: string[]): void {
  writeAtomic(dir, BUILD_ID_FILE, buildIds.map((id) => `${id}\n`).join(''));
}

/** The ids written by writeBuildIds; none when no build was started. */
export function readBuildIds(dir: string): string[] {
  return (readReport(dir, BUILD_ID_FILE) ?? '').split('\n').map((l) => l.trim()).filter(Boolean);
}

/** What `stop` needs to find a build by its marker (see START_FILE). */
export interface StartMarker {
  marker: string;
  /** The projects the job's builds run on (one per platform of a multi-platform image). */
  projectNames: string[];
  /** False while the context is packed and uploaded (the file proves report_dir writable); true from just before StartBuild. */
  requested: boolean;
}

export function writeStartMarker(dir: string, start: StartMarker): void {
  writeAtomic(dir, START_FILE, `${JSON.stringify(start)}\n`);
}

export function readStartMarker(dir: string): StartMarker | undefined {
  const text = readReport(dir, START_FILE);
  if (text === undefined) return undefined;
  try {
    const { marker, projectNames, requested } = JSON.parse(text) as Partial<StartMarker>;
    if (typeof marker === 'string' && Array.isArray(projectNames) && projectNames.every((p) => typeof p === 'string')) {
      return { marker, projectNames, requested: requested === true };
    }
  } catch {
    // A half-written file cannot exist (writeAtomic); anything else is not ours.
  }
  throw new ReportError(`${path.join(dir, START_FILE)} is not a start marker written by this program; remove it`);
}

function readReport(dir: string, name: string): string | undefined {
  try {
    return fs.readFileSync(path.join(dir, name), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ReportError(`Cannot read ${path.join(dir, name)}: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Writes build.json and annotations.json always, and build.env only for a successful build with a digest
 * (a stale one is removed), so later jobs never receive a digest that was not pushed.
 */
export function writeReports(dir: string, record: BuildRecord, dotenvPrefix: string): void {
  // Validate first: a bad value must not leave a partial set of reports behind.
  const dotenv = record.status === 'SUCCEEDED' && record.digest ? dotenvText(record, dotenvPrefix) : undefined;
  writeAtomic(dir, RECORD_FILE, `${JSON.stringify(record, null, 2)}\n`);
  writeAtomic(dir, ANNOTATIONS_FILE, `${JSON.stringify(annotations(record), null, 2)}\n`);
  if (dotenv !== undefined) writeAtomic(dir, DOTENV_FILE, dotenv);
  else removeReport(dir, DOTENV_FILE);
}

export function dotenvVariables(record: BuildRecord): Record<string, string> {
  const platforms = (record.platforms ?? []).map((p) => [`IMAGE_DIGEST_${p.platform.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`, p.digest ?? '']);
  return {
    IMAGE_DIGEST: record.digest ?? '',
    ...Object.fromEntries(platforms),
    IMAGE_REF: record.imageRef ?? '',
    IMAGE_TAGS: record.tags.join(','),
    IMAGE_REPOSITORY: record.image,
    // A reused image (skip_unchanged) had no build.
    ...(record.buildId ? { CODEBUILD_BUILD_ID: record.buildId, CODEBUILD_BUILD_URL: record.consoleUrl } : {}),
  };
}

/** The dotenv report; throws ReportError for anything GitLab's dotenv parser would reject or mangle. */
export function dotenvText(record: BuildRecord, prefix: string): string {
  const lines: string[] = [];
  for (const [name, value] of Object.entries(dotenvVariables(record))) {
    // readSettings checked dotenv_prefix, so the name is valid.
    const key = `${prefix}${name}`;
    // GitLab keeps quotes literally, has no escapes, and ends a value at a line break; $ and # invite misreading.
    if (value === '' || /[\s"'`\\$#]/.test(value)) {
      throw new ReportError(`dotenv value of ${key} is empty or contains a space, line break, quote, \\, $ or #: ${JSON.stringify(value)}`);
    }
    lines.push(`${key}=${value}`);
  }
  const text = `${lines.join('\n')}\n`;
  const bytes = Buffer.byteLength(text);
  if (bytes > DOTENV_MAX_BYTES) {
    throw new ReportError(`the dotenv report would be ${bytes} bytes; GitLab accepts less than 5 KB (shorten the image name or the tags)`);
  }
  return text;
}

/** GitLab's annotations report: https://docs.gitlab.com/ci/yaml/artifacts_reports/#artifactsreportsannotations */
export function annotations(record: BuildRecord): Record<string, { external_link: { label: string; url: string } }[]> {
  const links = record.buildId ? [{ external_link: { label: `CodeBuild build ${record.buildId} (${record.status})`, url: record.consoleUrl } }] : [];
  if (record.imageUrl) links.push({ external_link: { label: `Image ${record.imageRef ?? record.image}`, url: record.imageUrl } });
  return { 'codebuild-image': links };
}

function writeAtomic(dir: string, name: string, content: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw new ReportError(`Cannot create the report directory ${dir}: ${(e as Error).message}`, { cause: e });
  }
  const target = path.join(dir, name);
  const temp = path.join(dir, `.${name}.${process.pid}.${crypto.randomBytes(4).toString('hex')}.tmp`);
  try {
    fs.writeFileSync(temp, content, { mode: 0o644 });
    fs.renameSync(temp, target);
  } catch (e) {
    fs.rmSync(temp, { force: true });
    throw new ReportError(`Cannot write ${target}: ${(e as Error).message}`, { cause: e });
  }
}

function removeReport(dir: string, name: string): void {
  try {
    fs.rmSync(path.join(dir, name), { force: true });
  } catch (e) {
    throw new ReportError(`Cannot remove the stale ${path.join(dir, name)}: ${(e as Error).message}`, { cause: e });
  }
}
