/**
 * Entries in, in listing order, ready to write out: files read, hashed and deflated ahead on the pool (or left
 * to stream) and checked against the listing. Also hashContext, the first pass that names the archive.
 */
import path from 'node:path';
import type { ContextEntry } from './listing';
import { ContextDigest } from './digest';
import { ContextError } from '../shared/errors';
import type { Batch, FileDone, FileJob, FilePool } from './pack-files';
import { CHUNK, crc32, STORE } from './zip-format';

/** What preparing needs of the packer's options (zip.ts). */
export interface PrepareOptions {
  level: number;
  streamThreshold: number;
  /** Each entry's file SHA-256 from hashContext: a file whose content differs fails as changed. */
  expected?: (string | undefined)[] | undefined;
}

export const DEFAULT_LEVEL = 6;

/** Extensions whose content is already compressed: deflating it costs time and gains nothing. */
const STORED_EXTENSIONS = new Set(
  (
    '.gz .tgz .zip .jar .war .ear .whl .egg .nupkg .apk .aab .ipa .deb .rpm .crx .vsix ' +
    '.zst .tzst .xz .txz .lz .lzma .lz4 .bz2 .tbz .tbz2 .7z .rar .br .cab ' +
    '.png .jpg .jpeg .gif .webp .avif .heic .heif .jxl .ico .mp3 .m4a .aac .ogg .oga .opus .flac ' +
    '.mp4 .m4v .mkv .webm .mov .avi .wmv .woff .woff2 .docx .xlsx .pptx .odt .ods .odp .epub'
  ).split(' '),
);

const EMPTY = Buffer.alloc(0);

/** A batch for the file pool: up to this many files or this many bytes (a larger file goes alone). */
const BATCH_FILES = 64;
const BATCH_BYTES = 1024 * 1024;
/**
 * Near the end, batches shrink to the bytes left over twice the threads, down to this: a worker's last queued
 * batches are then short, and the main thread does not wait long for them with nothing left to run.
 */
const LAST_BATCH_BYTES = 64 * 1024;
/** Bytes read ahead of the writer, in batches on the pool (each batch holds its bodies until written). */
const AHEAD_BYTES = 8 * 1024 * 1024;

/** A first-pass batch (hashing only): at most this many files and bytes. */
const HASH_BATCH_FILES = 256;
const HASH_BATCH_BYTES = 32 * CHUNK;

/**
 * The first pass: hashes every file (on the pool) and returns the context digest that names the archive
 * before it is written, with each file's SHA-256 for packContext's `expected`.
 */
export async function hashContext(entries: ContextEntry[], pool: FilePool, level = DEFAULT_LEVEL): Promise<{ digest: string; fileHashes: (string | undefined)[] }> {
  const fileHashes: (string | undefined)[] = new Array(entries.length);
  const batches: Promise<void>[] = [];
  for (let i = 0; i < entries.length; ) {
    const indexes: number[] = [];
    for (let bytes = 0; i < entries.length && indexes.length < HASH_BATCH_FILES && bytes < HASH_BATCH_BYTES; i++) {
      const e = entries[i]!;
      if (e.kind !== 'file') continue;
      indexes.push(i);
      bytes += e.size;
    }
    const jobs = indexes.map((j) => ({ absPath: entries[j]!.absPath, size: entries[j]!.size, level: -1, hashOnly: true }));
    batches.push(
      pool.run(jobs).then(({ done }) =>
        done.forEach((d, k) => {
          fileHashes[indexes[k]!] = fileDone(entries[indexes[k]!]!, d).sha256;
        }),
      ),
    );
  }
  await Promise.all(batches);
  const digest = new ContextDigest(level);
  entries.forEach((e, i) => digest.add(e, fileHashes[i]));
  return { digest: digest.hex(), fileHashes };
}

/**
 * An entry ready to write: whole body in memory, or a file to stream. The last entry of a batch carries
 * `release`, to call once every body of the batch is written and let go (its buffer is then reused).
 */
export type Prepared =
  | { entry: ContextEntry; method: number; crc: number; size: number; body: Buffer; sha256?: string; release?: () => void }
  | { entry: ContextEntry; streamed: true; index: number };

/**
 * Yields entries in order, a batch at a time, while later ones are read, hashed and deflated in batches on the
 * pool (at most four batches per thread and AHEAD_BYTES of files in flight, so the workers keep going while a
 * streamed file is written). Files over the stream threshold go alone, streamed. Batches shrink near the end
 * (LAST_BATCH_BYTES).
 */
export async function* prepareInOrder(entries: ContextEntry[], opts: PrepareOptions, pool: FilePool): AsyncGenerator<Prepared[]> {
  const ahead: { bytes: number; ready: Promise<Prepared[]> }[] = [];
  const threads = pool.size + 1; // the workers and this thread
  const maxBatches = 4 * threads;
  const streamed = (e: ContextEntry) => e.kind === 'file' && e.size > opts.streamThreshold;
  let next = 0;
  let aheadBytes = 0;
  let left = pool.size === 0 ? Infinity : entries.reduce((n, e) => (e.kind === 'file' && !streamed(e) ? n + e.size : n), 0);
  const fill = (): void => {
    while (next < entries.length && ahead.length < maxBatches && aheadBytes < AHEAD_BYTES) {
      const first = next;
      if (streamed(entries[next]!)) {
        ahead.push({ bytes: 0, ready: Promise.resolve([{ entry: entries[next]!, streamed: true, index: next++ }]) });
        continue;
      }
      const jobs: FileJob[] = [];
      let bytes = 0;
      const most = Math.min(BATCH_BYTES, Math.max(LAST_BATCH_BYTES, left / (2 * threads)));
      for (; next < entries.length && !streamed(entries[next]!) && jobs.length < BATCH_FILES && bytes < most; next++) {
        const e = entries[next]!;
        if (e.kind !== 'file') continue;
        jobs.push({ absPath: e.absPath, size: e.size, level: isStoredByName(e.path) ? -1 : opts.level, hashOnly: false });
        bytes += e.size;
      }
      const last = next;
      left -= bytes;
      const ready = (jobs.length > 0 ? pool.run(jobs) : Promise.resolve(undefined)).then((batch) => {
        const prepared = toPrepared(entries, first, last, batch, opts.expected);
        const end = prepared.at(-1);
        if (batch && end && !('streamed' in end)) end.release = () => pool.recycle(batch.bodies);
        return prepared;
      });
      ready.catch(() => undefined); // rejections surface when awaited in order below
      ahead.push({ bytes, ready });
      aheadBytes += bytes;
    }
  };
  fill();
  for (let item = ahead.shift(); item; item = ahead.shift()) {
    const prepared = await item.ready;
    aheadBytes -= item.bytes;
    fill();
    yield prepared;
  }
}

/** Entries `from` to `to` (exclusive) with the batch of their files. */
function toPrepared(entries: ContextEntry[], from: number, to: number, batch: Batch | undefined, expected: PrepareOptions['expected']): Prepared[] {
  const prepared: Prepared[] = [];
  let k = 0;
  for (let i = from; i < to; i++) {
    const entry = entries[i]!;
    if (entry.kind === 'directory') {
      prepared.push({ entry, method: STORE, crc: 0, size: 0, body: EMPTY });
    } else if (entry.kind === 'symlink') {
      const body = Buffer.from(entry.linkTarget ?? '');
      prepared.push({ entry, method: STORE, crc: crc32(body), size: body.length, body });
    } else {
      const d = fileDone(entry, batch!.done[k++]!);
      if (expected && expected[i] !== d.sha256) throw changed(entry);
      prepared.push({ entry, method: d.method, crc: d.crc, size: entry.size, body: batch!.bodies.subarray(d.start, d.end), sha256: d.sha256 });
    }
  }
  return prepared;
}

/** The pool's result for one file, or the ContextError it stands for. */
function fileDone(entry: ContextEntry, d: FileDone): Exclude<FileDone, { failed: string }> {
  if (!('failed' in d)) return d;
  if (d.failed === 'changed') throw changed(entry);
  throw new ContextError(`Cannot read ${entry.path} in the build context: ${d.message}. Make it readable or add it to .dockerignore.`);
}

export function changed(entry: ContextEntry): ContextError {
  return new ContextError(`${entry.path} changed while the build context was being packed; run the job again once nothing writes to the context.`);
}

export function isStoredByName(p: string): boolean {
  return STORED_EXTENSIONS.has(path.posix.extname(p).toLowerCase());
}

