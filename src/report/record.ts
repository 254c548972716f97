/**
 * The build record: a finished build (or several platforms', or an image reused) and the settings in, the
 * record written to build.json out, with the dotenv variables and annotations derived from it. Pure.
 */
import type { Build } from '@aws-sdk/client-codebuild';
import { MEDIA_TYPE_VARIABLE } from '../build/buildspec';
import { consoleHost, exportedVariable } from '../build/codebuild';
import { ReportError } from '../shared/errors';
import { INDEX_TYPES } from '../registry/distribution';
import type { Settings } from '../inputs/settings';
import type { Upload } from '../context/upload';
import type { Archive } from '../context/zip';
import type { ImageSignature } from '../sign/sign-image';

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
  /** With sign_with: each digest signed (the image's, and each image manifest of an index), where and with which key. */
  signatures?: ImageSignature[];
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
