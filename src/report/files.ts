/**
 * Report files in report_dir: `build-id` as soon as the build starts (for `stop`), then `build.env`
 * (artifacts:reports:dotenv), `build.json` (the full record) and `annotations.json` (artifacts:reports:annotations).
 * Every file is written to a temporary name and renamed, so GitLab never collects a half-written report.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { ReportError } from '../shared/errors';
import { annotations, type BuildRecord, dotenvText } from './record';

export const BUILD_ID_FILE = 'build-id';
/** Written before StartBuild: the marker the build will carry, so `stop` finds a build whose id never arrived. */
export const START_FILE = 'build-start';
export const DOTENV_FILE = 'build.env';
export const RECORD_FILE = 'build.json';
export const ANNOTATIONS_FILE = 'annotations.json';

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
