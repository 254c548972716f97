/** Paths the inputs name inside the checkout, resolved through symlinks and kept inside their root. */
import fs from 'node:fs';
import path from 'node:path';
import { shown } from '../shared/shown';

/** Why a path holding U+FFFD is not found: the environment variable held bytes that are not UTF-8. */
export const NOT_UTF8 =
  'the name is not valid UTF-8 (each bad byte shows as \uFFFD), and Node.js cannot open a path it cannot decode; rename the directory or file to a UTF-8 name';

export type Resolved = { real: string } | { problem: string };

/** The real path of `dir` (relative to `cwd`) when it is a directory. */
export function realDir(cwd: string, dir: string): string | undefined {
  try {
    const real = fs.realpathSync.native(path.resolve(cwd, dir));
    return fs.statSync(real).isDirectory() ? real : undefined;
  } catch {
    return undefined;
  }
}

export function isInside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === '' || (!path.isAbsolute(rel) && rel !== '..' && !rel.startsWith(`..${path.sep}`));
}

export const toPosix = (p: string): string => p.split(path.sep).join('/');

/** The file was not a regular file when opened (it was swapped for a FIFO, a directory…). */
export class NotRegularFile extends Error {}

/**
 * Reads at most `maxBytes` of a file checked to be regular, without blocking should it have become a FIFO
 * since: opened non-blocking without following a symlink, then checked on the descriptor. Throws
 * NotRegularFile, or the error of the open.
 */
export function readRegularFile(real: string, maxBytes = Infinity): string {
  const fd = fs.openSync(real, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new NotRegularFile(`${real} is not a regular file`);
    const buf = Buffer.alloc(Math.min(st.size, maxBytes));
    let n = 0;
    for (let got = -1; got !== 0 && n < buf.length; n += got) got = fs.readSync(fd, buf, n, buf.length - n, n);
    return buf.subarray(0, n).toString('utf8');
  } finally {
    fs.closeSync(fd);
  }
}

/** Resolves `given` under `root` (following symlinks) and checks it stays inside `root`. */
export function resolveInside(root: string, given: string): Resolved {
  let real: string;
  try {
    real = fs.realpathSync.native(path.resolve(root, given));
  } catch {
    if (given.includes('\uFFFD')) return { problem: `${shown(given)} does not exist: ${NOT_UTF8}` };
    return { problem: `${shown(given)} does not exist (looked for ${shown(path.resolve(root, given))})` };
  }
  if (!isInside(root, real)) return { problem: `${shown(given)} resolves to ${shown(real)}, outside ${shown(root)}` };
  return { real };
}

/** The real path of the directory `given` names inside `root`. */
export function dirInside(root: string, given: string): Resolved {
  const r = resolveInside(root, given);
  if ('real' in r && !fs.statSync(r.real).isDirectory()) return { problem: `${shown(given)} is not a directory` };
  return r;
}

/** The real path of the regular file `given` names inside `root`. */
export function fileInside(root: string, given: string): Resolved {
  const r = resolveInside(root, given);
  if ('real' in r && !fs.statSync(r.real).isFile()) return { problem: `${shown(given)} is not a file` };
  return r;
}
