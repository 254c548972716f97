import { closeSync, constants, existsSync, lstatSync, openSync, readdirSync, readlinkSync, realpathSync, type Dirent, type Stats } from 'node:fs';
import path from 'node:path';
import { isInside, NotRegularFile, readRegularFile } from '../inputs/checkout-paths';
import type { Output } from '../shared/console';
import { Dockerignore, readPatterns, type MatchInfo } from './dockerignore';
import { ContextError } from '../shared/errors';
import { escapeControls } from '../shared/shown';

export interface ContextEntry {
  /** POSIX path relative to the context, no leading `./`, no trailing `/`. */
  path: string;
  absPath: string;
  kind: 'file' | 'directory' | 'symlink';
  /** Full st_mode (type and permission bits), stored in the zip's external attributes. */
  mode: number;
  /** Bytes of content: file size, length of the link target, 0 for directories. */
  size: number;
  /** Symlinks only: the link text exactly as stored on disk. */
  linkTarget?: string;
}

/**
 * A listed entry. Its absolute path is made when asked for, not kept: stored, path.join's sliced strings kept
 * about 450 bytes per entry alive, and even plain strings end up flattened copies (20 MB for 200,000 files).
 * `root` is a real path and `path` names from readdir, so joining them needs no normalizing.
 */
class Listed implements ContextEntry {
  constructor(
    private readonly root: string,
    readonly path: string,
    readonly kind: ContextEntry['kind'],
    readonly mode: number,
    readonly size: number,
  ) {}

  get absPath(): string {
    return this.root === '/' ? `/${this.path}` : `${this.root}/${this.path}`;
  }
}

export interface ListOptions {
  /** Dockerfile path relative to the context (POSIX); default `Dockerfile`. */
  dockerfile?: string;
  /** Directories of the context (POSIX, relative) that are never sent: this program's report directories. */
  skipDirs?: string[];
}

interface Walk {
  root: string;
  ignore: Dockerignore;
  /** Files sent even when .dockerignore excludes them (see listContext). */
  alwaysSent: Set<string>;
  skipDirs: Set<string>;
  out: Output;
  entries: ContextEntry[];
  backslashNames: string[];
  notUtf8Names: string[];
}

/** Largest ignore file read; Docker has no limit, but a bigger one is surely not a list of patterns. */
const MAX_IGNORE_BYTES = 1 << 20;

/**
 * Lists what Docker would send as the build context: every path under `root` not excluded by
 * `.dockerignore` (or by `<dockerfile>.dockerignore`, which BuildKit prefers when it exists), with
 * directories, sorted by the bytes of the path. `root` is the real path of a directory (readSettings
 * checked the context input).
 *
 * Like `docker build`, the Dockerfile and the ignore files are always sent even when excluded: the Docker
 * on CodeBuild needs them, reads the same ignore file and then hides them from COPY/ADD itself.
 * Symlinks are sent as links, wherever they point, and never followed: `docker build` does the same, and
 * only the link text leaves the machine (see docs/build-context.md, "Symlinks"). Sockets, FIFOs and device files are
 * skipped with a warning. Names holding a backslash are refused: unzip tools disagree on whether it is a
 * directory separator, so the build could see other paths than Docker would. Names that are not UTF-8
 * are refused: a zip entry name is UTF-8.
 *
 * Every directory is read through a descriptor whose path is checked (see openDirInside), so a directory
 * swapped for a symlink while the context is listed never makes the walk read outside the context.
 */
export async function listContext(root: string, out: Output, options: ListOptions = {}): Promise<ContextEntry[]> {
  const dockerfile = path.posix.normalize(options.dockerfile ?? 'Dockerfile');
  const { patterns, file: ignoreFile } = readIgnoreFile(root, dockerfile);
  let ignore: Dockerignore;
  try {
    ignore = new Dockerignore(patterns);
  } catch (e) {
    throw new ContextError(`${ignoreFile}: ${(e as Error).message}. Fix the pattern (see https://docs.docker.com/build/concepts/context/#dockerignore-files).`, { cause: e });
  }
  if (ignoreFile !== '.dockerignore') out.info(`Using ${ignoreFile} (Dockerfile-specific ignore file) instead of .dockerignore`);

  const walk: Walk = {
    root,
    ignore,
    alwaysSent: new Set(['.dockerignore', dockerfile, `${dockerfile}.dockerignore`]),
    skipDirs: new Set(options.skipDirs ?? []),
    out,
    entries: [],
    backslashNames: [],
    notUtf8Names: [],
  };
  walkDir(walk, '', undefined);

  const problems = [
    refusal(
      walk.backslashNames,
      'The build context has names containing a backslash, which some unzip tools read as a directory separator:',
      'Rename each one, or add it to .dockerignore.',
    ),
    refusal(
      walk.notUtf8Names,
      'The build context has names that are not valid UTF-8 (shown with � for each bad byte), which a zip cannot carry:',
      'Rename each one to UTF-8 (e.g. convmv -f latin1 -t utf8), or add it to .dockerignore.',
    ),
  ].filter((p) => p !== undefined);
  if (problems.length > 0) throw new ContextError(problems);
  return sortByPath(walk.entries);
}

/** One problem listing the offending paths (the first ten) between what is wrong and the fix. */
function refusal(paths: string[], problem: string, fix: string): string | undefined {
  if (paths.length === 0) return undefined;
  const shown = paths.slice(0, 10).map((l) => `  ${escapeControls(l)}`);
  if (paths.length > 10) shown.push(`  … and ${paths.length - 10} more`);
  return [problem, ...shown, fix].join('\n');
}

// The walk uses sync fs calls on purpose: it is thousands of tiny syscalls, and each async call pays a
// thread-pool round trip (a 70,000-file walk took 1.4 s async and 0.25 s sync on the benchmark machine).

/**
 * The ignore file's patterns. Only a regular file is read (a FIFO would block the job forever), and a
 * symlinked ignore file only when its target is inside the context.
 */
function readIgnoreFile(root: string, dockerfile: string): { patterns: string[]; file: string } {
  for (const file of [`${dockerfile}.dockerignore`, '.dockerignore']) {
    let real = path.join(root, file);
    let st: Stats;
    try {
      st = lstatSync(real);
      if (st.isSymbolicLink()) {
        real = realpathSync(real);
        if (!isInside(root, real)) throw new ContextError(`${file} is a symlink to ${escapeControls(real)}, outside the build context; make it a regular file.`);
        st = lstatSync(real);
      }
    } catch (e) {
      if (e instanceof ContextError) throw e;
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw new ContextError(`Cannot read ${file}: ${(e as Error).message}`, { cause: e });
    }
    if (!st.isFile()) {
      throw new ContextError(`${file} is ${fileKind(st)}, not a file: Docker reads it as a list of patterns. Remove it or replace it with a regular file.`);
    }
    if (st.size > MAX_IGNORE_BYTES) throw new ContextError(`${file} is ${st.size} bytes; a .dockerignore over 1 MiB is surely not a list of patterns.`);
    let text: string;
    try {
      text = readRegularFile(real, MAX_IGNORE_BYTES);
    } catch (e) {
      if (e instanceof NotRegularFile) throw new ContextError(`${file} changed while it was being read; run the job again.`);
      throw new ContextError(`Cannot read ${file}: ${(e as Error).message}`, { cause: e });
    }
    return { patterns: readPatterns(text), file };
  }
  return { patterns: [], file: '.dockerignore' };
}

function fileKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO (named pipe)';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device file';
  return 'not a regular file';
}

function walkDir(walk: Walk, dir: string, dirInfo: MatchInfo | undefined): void {
  const children: { rel: string; isDir: boolean; info: MatchInfo }[] = [];
  openDirInside(walk.root, dir, (handle) => {
    let dirents: Dirent<Buffer>[];
    try {
      dirents = readdirSync(handle, { withFileTypes: true, encoding: 'buffer' });
    } catch (e) {
      throw new ContextError(`Cannot list ${dir || '.'} in the build context: ${(e as Error).message}. Make it readable or add it to .dockerignore.`, { cause: e });
    }
    for (const d of dirents) {
      const name = d.name.toString('utf8');
      const rel = dir ? `${dir}/${name}` : name;
      const { excluded, info } = walk.ignore.match(rel, dirInfo);
      const sent = !excluded || walk.alwaysSent.has(rel);
      if (d.isDirectory() && walk.skipDirs.has(rel)) {
        walk.out.info(`Not sending ${rel}: it holds this program's reports, which change with every run.`);
        continue;
      }
      if (sent && !Buffer.from(name).equals(d.name)) {
        walk.notUtf8Names.push(rel);
        continue;
      }
      if (d.isDirectory()) {
        if (!sent && !mayHoldSentFiles(walk, rel, info)) continue;
        if (sent) addEntry(walk, rel, `${handle}/${name}`);
        children.push({ rel, isDir: true, info });
      } else if (sent) {
        addEntry(walk, rel, `${handle}/${name}`);
      }
    }
  });
  // The directory's descriptor is closed before descending, so one is open at a time whatever the depth.
  for (const c of children) walkDir(walk, c.rel, c.info);
}

/** An excluded directory is walked anyway when an exception pattern or an always-sent file may lie below it. */
function mayHoldSentFiles(walk: Walk, dir: string, info: MatchInfo): boolean {
  const below = `${dir}/`;
  return !walk.ignore.canSkipExcludedDir(dir, info) || [...walk.alwaysSent].some((f) => f.startsWith(below));
}

/** `at` names the entry through its parent's checked descriptor, so the lookup cannot leave the context. */
function addEntry(walk: Walk, rel: string, at: string): void {
  if (rel.includes('\\')) {
    walk.backslashNames.push(rel);
    return;
  }
  let st: Stats;
  try {
    st = lstatSync(at);
  } catch (e) {
    throw new ContextError(`Cannot read ${rel} in the build context: ${(e as Error).message}`, { cause: e });
  }
  const mode = st.mode;
  // One flat string per path: `${dir}/${name}` is a cons string of both, and sorting adds a flat copy to it.
  rel = Buffer.from(rel).toString();
  if (st.isFile()) {
    walk.entries.push(new Listed(walk.root, rel, 'file', mode, st.size));
  } else if (st.isDirectory()) {
    walk.entries.push(new Listed(walk.root, rel, 'directory', mode, 0));
  } else if (st.isSymbolicLink()) {
    const linkTarget = readlinkSync(at);
    walk.entries.push(Object.assign(new Listed(walk.root, rel, 'symlink', mode, Buffer.byteLength(linkTarget)), { linkTarget }));
  } else {
    walk.out.warn(`Skipping ${rel}: sockets, FIFOs and device files cannot be sent to CodeBuild (add it to .dockerignore to silence this).`);
  }
}

// ---- reading only inside the context ----

/**
 * Linux names every open descriptor in /proc/self/fd: reading that link says where the opened file really
 * is, and a path through it resolves from the opened directory itself (openat semantics), whatever has
 * been renamed or swapped since. Elsewhere the checks fall back to realpath, which leaves a short race.
 */
const FD_DIR = existsSync('/proc/self/fd') ? '/proc/self/fd' : undefined;

/**
 * Calls `fn` with a path to the context directory `rel` that resolves to the directory just opened, after
 * checking that no component of its path was a symlink: O_NOFOLLOW guards the last component, and the
 * descriptor's real path (equal to the expected one) guards all the others.
 */
function openDirInside(root: string, rel: string, fn: (handle: string) => void): void {
  const abs = rel ? path.join(root, rel) : root;
  let fd: number;
  try {
    fd = openSync(abs, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ELOOP' || code === 'ENOTDIR' || code === 'ENOENT') throw changedWhileListing(rel);
    throw new ContextError(`Cannot list ${rel || '.'} in the build context: ${(e as Error).message}. Make it readable or add it to .dockerignore.`, { cause: e });
  }
  try {
    if (openedPath(fd, abs) !== abs) throw changedWhileListing(rel);
    fn(FD_DIR ? `${FD_DIR}/${fd}` : abs);
  } finally {
    closeSync(fd);
  }
}

function openedPath(fd: number, abs: string): string {
  try {
    return FD_DIR ? readlinkSync(`${FD_DIR}/${fd}`) : realpathSync(abs);
  } catch {
    return '';
  }
}

function changedWhileListing(rel: string): ContextError {
  return new ContextError(`${rel || '.'} changed while the build context was being listed; run the job again once nothing writes to the context.`);
}

/**
 * Throws unless the descriptor `fd`, opened with O_NOFOLLOW at `entry.absPath`, is that very file: had a
 * directory on its path been swapped for a symlink after listing, the file opened would lie elsewhere.
 */
export function assertOpenedInside(fd: number, entry: ContextEntry): void {
  if (openedPath(fd, entry.absPath) !== entry.absPath) {
    throw new ContextError(`${entry.path} changed while the build context was being packed; run the job again once nothing writes to the context.`);
  }
}

const SURROGATE = /[\ud800-\udfff]/;

/**
 * Byte order of the UTF-8 paths. JS string order (UTF-16 code units) is the same order unless a path holds a
 * character outside the BMP (a surrogate pair), so only then are the paths sorted by their bytes: a Buffer per
 * path cost more than the rest of the sort.
 */
function sortByPath(entries: ContextEntry[]): ContextEntry[] {
  if (!entries.some((e) => SURROGATE.test(e.path))) return entries.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const keyed = entries.map((e) => ({ e, key: Buffer.from(e.path) }));
  keyed.sort((a, b) => Buffer.compare(a.key, b.key));
  return keyed.map((k) => k.e);
}
