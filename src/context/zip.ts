/**
 * The packer: writes a context listing as a deterministic ZIP (ZIP64 when needed) and hashes it while
 * writing. Same entries and contents give the same bytes on the same Node build: entries keep the listing
 * order, every timestamp is 1980-01-01 00:00 (DOS time, no extended-timestamp field), no uid/gid is stored,
 * and "version made by" is UNIX so unzip restores modes and symlinks.
 *
 * Files are read and deflated ahead of the writer within a fixed byte budget, larger ones are streamed, and
 * only a handful of files is open at once, so memory does not grow with the bytes in the context (only the
 * central directory grows with the number of entries, about 60 bytes plus the name each).
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { assertOpenedInside, type ContextEntry } from './listing';
import { ContextDigest } from './digest';
import { ContextError } from '../shared/errors';
import { type Batch, type FileDone, type FileJob, FilePool } from './pack-files';

export interface Archive {
  /** The context digest (see digest.ts): SHA-256 of the listing and contents; names the uploaded object. */
  digest: string;
  /** Archive size in bytes. */
  size: number;
  /** Files and symlinks in the archive (directories not counted). */
  fileCount: number;
  /** All entries, directories included. */
  entryCount: number;
}

export interface PackOptions {
  /** Deflate level, default 6 (as `zip -6`). */
  level?: number;
  /** Files larger than this are streamed instead of read whole; default 2 MiB. */
  streamThreshold?: number;
  /** Write ZIP64 records even when not needed (tests). */
  forceZip64?: boolean;
  /** Worker threads reading and deflating files (0: all on this thread); default one per core. Ignored with `pool`. */
  workers?: number;
  /** A pool to use (and leave open), e.g. the one hashContext used. */
  pool?: FilePool;
  /** Each entry's file SHA-256 from hashContext: a file whose content differs fails as changed. */
  expected?: (string | undefined)[];
}

type Options = Required<Pick<PackOptions, 'level' | 'streamThreshold' | 'forceZip64'>> & Pick<PackOptions, 'expected'>;

/** Where the archive bytes go, in order. A buffer passed to write is not reused afterwards. */
export interface ArchiveTarget {
  write(b: Buffer): Promise<void>;
}

const DEFAULT_LEVEL = 6;

/**
 * Packs `entries` (as listed by listContext) into `outFile`, with the SHA-256 of the archive bytes. Throws
 * ContextError if a file changed meanwhile.
 */
export async function packContext(entries: ContextEntry[], outFile: string, options: PackOptions = {}): Promise<Archive & { file: string; sha256: string }> {
  const fh = await open(outFile, 'w');
  const hash = createHash('sha256');
  try {
    const archive = await packContextTo(entries, { write: (b) => (hash.update(b), writeAll(fh, b)) }, options);
    await fh.close();
    return { ...archive, file: outFile, sha256: hash.digest('hex') };
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(outFile, { force: true });
    throw e;
  }
}

/** Packs `entries` into `target` (e.g. a multipart upload as it is written). */
export async function packContextTo(entries: ContextEntry[], target: ArchiveTarget, options: PackOptions = {}): Promise<Archive> {
  const { pool: given, workers, ...rest } = options;
  const opts: Options = { level: DEFAULT_LEVEL, streamThreshold: 2 * 1024 * 1024, forceZip64: false, ...rest };
  const pool = given ?? new FilePool(workers);
  try {
    const sink = new Sink(target);
    const central = new Slabs();
    const digest = new ContextDigest(opts.level);
    for await (const item of prepareInOrder(entries, opts, pool)) digest.add(item.entry, await writeEntry(sink, item, central, opts));
    const cdOffset = sink.offset;
    for (const slab of central.slabs()) await sink.write(slab);
    await sink.write(endOfCentralDirectory(central.count, cdOffset, sink.offset - cdOffset, opts.forceZip64));
    await sink.flush();
    return {
      digest: digest.hex(),
      size: sink.offset,
      fileCount: entries.filter((e) => e.kind !== 'directory').length,
      entryCount: entries.length,
    };
  } finally {
    if (!given) await pool.close();
  }
}

/**
 * An upper bound of the archive size: contents (stored when deflate does not shrink them; a streamed deflate
 * may exceed its input by a fraction of a percent), ZIP64-sized headers, data descriptors and end records.
 */
export function archiveSizeBound(entries: ContextEntry[]): number {
  let bound = 98;
  for (const e of entries) bound += Math.ceil(e.size * 1.01) + 2 * Buffer.byteLength(e.path) + 200;
  return bound;
}

async function writeAll(fh: FileHandle, b: Buffer): Promise<void> {
  for (let done = 0; done < b.length; ) done += (await fh.write(b, done)).bytesWritten;
}

/** Sequential writer collecting small writes into 1 MiB buffers. */
class Sink {
  offset = 0;
  private buf = Buffer.allocUnsafe(CHUNK);
  private used = 0;

  constructor(private readonly target: ArchiveTarget) {}

  async write(b: Buffer): Promise<void> {
    this.offset += b.length;
    if (this.used + b.length > CHUNK) await this.flush();
    if (b.length >= CHUNK) return this.target.write(b);
    b.copy(this.buf, this.used);
    this.used += b.length;
  }

  async flush(): Promise<void> {
    if (this.used === 0) return;
    const full = this.buf.subarray(0, this.used);
    this.buf = Buffer.allocUnsafe(CHUNK); // the target may hold on to the full one
    this.used = 0;
    await this.target.write(full);
  }
}

/** Central directory records packed into 1 MiB slabs: one object per MiB rather than one per entry. */
class Slabs {
  count = 0;
  private done: Buffer[] = [];
  private current = Buffer.alloc(CHUNK);
  private used = 0;

  /** A zero-filled region of `n` bytes for the next record. */
  take(n: number): Buffer {
    if (this.used + n > this.current.length) {
      this.done.push(this.current.subarray(0, this.used));
      this.current = Buffer.alloc(Math.max(CHUNK, n));
      this.used = 0;
    }
    this.count++;
    this.used += n;
    return this.current.subarray(this.used - n, this.used);
  }

  slabs(): Buffer[] {
    return [...this.done, this.current.subarray(0, this.used)];
  }
}

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
const STORE = 0;
const DEFLATE = 8;
const MAX16 = 0xffff;
const MAX32 = 0xffffffff;
/** 1980-01-01, the earliest DOS date; the DOS time 00:00:00 is 0. */
const DOS_DATE = (1 << 5) | 1;
const MADE_BY_UNIX = (3 << 8) | 63;
const FLAG_DATA_DESCRIPTOR = 0x0008;
const FLAG_UTF8 = 0x0800;
const MSDOS_DIRECTORY = 0x10;
/** A streamed deflate entry this large gets ZIP64 sizes up front: its compressed size is known only at the end. */
const STREAMED_ZIP64_FROM = 0xf0000000;

/** A batch for the file pool: up to this many files or this many bytes (a larger file goes alone). */
const BATCH_FILES = 64;
const BATCH_BYTES = 1024 * 1024;
/** Bytes read ahead of the writer, in batches on the pool (each batch holds its bodies until written). */
const AHEAD_BYTES = 8 * 1024 * 1024;
const CHUNK = 1024 * 1024;
const SAMPLE = 64 * 1024;

/** A first-pass batch (hashing only): at most this many files and bytes. */
const HASH_BATCH_FILES = 256;
const HASH_BATCH_BYTES = 32 * CHUNK;

const deflateRaw = promisify(zlib.deflateRaw);
const NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW;

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

/** An entry ready to write: whole body in memory, or a file to stream. */
type Prepared =
  | { entry: ContextEntry; method: number; crc: number; size: number; body: Buffer; sha256?: string }
  | { entry: ContextEntry; streamed: true; index: number };

/**
 * Yields entries in order while later ones are read, hashed and deflated in batches on the pool (at most two
 * batches per worker and AHEAD_BYTES of files in flight). Files over the stream threshold go alone, streamed.
 */
async function* prepareInOrder(entries: ContextEntry[], opts: Options, pool: FilePool): AsyncGenerator<Prepared> {
  const ahead: { bytes: number; ready: Promise<Prepared[]> }[] = [];
  const maxBatches = Math.max(2, 2 * pool.size);
  const streamed = (e: ContextEntry) => e.kind === 'file' && e.size > opts.streamThreshold;
  let next = 0;
  let aheadBytes = 0;
  const fill = (): void => {
    while (next < entries.length && ahead.length < maxBatches && aheadBytes < AHEAD_BYTES) {
      const first = next;
      if (streamed(entries[next]!)) {
        ahead.push({ bytes: 0, ready: Promise.resolve([{ entry: entries[next]!, streamed: true, index: next++ }]) });
        continue;
      }
      const jobs: FileJob[] = [];
      let bytes = 0;
      for (; next < entries.length && !streamed(entries[next]!) && jobs.length < BATCH_FILES && bytes < BATCH_BYTES; next++) {
        const e = entries[next]!;
        if (e.kind !== 'file') continue;
        jobs.push({ absPath: e.absPath, size: e.size, level: isStoredByName(e.path) ? -1 : opts.level, hashOnly: false });
        bytes += e.size;
      }
      const last = next;
      const ready = (jobs.length > 0 ? pool.run(jobs) : Promise.resolve(undefined)).then((batch) => toPrepared(entries, first, last, batch, opts.expected));
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
    yield* prepared;
  }
}

/** Entries `from` to `to` (exclusive) with the batch of their files. */
function toPrepared(entries: ContextEntry[], from: number, to: number, batch: Batch | undefined, expected: Options['expected']): Prepared[] {
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

/**
 * O_NOFOLLOW keeps a file swapped for a symlink after listing from pulling in data from outside the context;
 * the descriptor's own path catches a directory on the way that was swapped for one.
 */
async function openEntry(entry: ContextEntry): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(entry.absPath, NO_FOLLOW);
  } catch (e) {
    throw openError(entry, e);
  }
  try {
    assertOpenedInside(fh.fd, entry);
  } catch (e) {
    await fh.close();
    throw e;
  }
  return fh;
}

function openError(entry: ContextEntry, e: unknown): ContextError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ELOOP' || code === 'ENOENT') return changed(entry);
  return new ContextError(`Cannot read ${entry.path} in the build context: ${(e as Error).message}. Make it readable or add it to .dockerignore.`, { cause: e });
}

function changed(entry: ContextEntry): ContextError {
  return new ContextError(`${entry.path} changed while the build context was being packed; run the job again once nothing writes to the context.`);
}

function isStoredByName(p: string): boolean {
  return STORED_EXTENSIONS.has(path.posix.extname(p).toLowerCase());
}

interface Header {
  name: Buffer;
  flags: number;
  attrs: number;
  offset: number;
  method: number;
  crc: number;
  compressedSize: number;
  size: number;
  zip64: boolean;
}
type HeaderBase = Pick<Header, 'name' | 'flags' | 'attrs' | 'offset'>;

/** Writes one entry and adds its central directory record; returns a file's content SHA-256. */
async function writeEntry(sink: Sink, item: Prepared, central: Slabs, opts: Options): Promise<string | undefined> {
  const { entry } = item;
  const base: HeaderBase = {
    name: Buffer.from(entry.kind === 'directory' ? `${entry.path}/` : entry.path),
    flags: /^[\x20-\x7e]*$/.test(entry.path) ? 0 : FLAG_UTF8,
    attrs: (((entry.mode & 0xffff) << 16) | (entry.kind === 'directory' ? MSDOS_DIRECTORY : 0)) >>> 0,
    offset: sink.offset,
  };
  let h: Header;
  let sha256: string | undefined;
  if ('streamed' in item) {
    ({ h, sha256 } = await writeStreamed(sink, entry, base, opts));
    if (opts.expected && opts.expected[item.index] !== sha256) throw changed(entry);
  } else {
    h = { ...base, method: item.method, crc: item.crc, compressedSize: item.body.length, size: item.size, zip64: opts.forceZip64 || base.offset >= MAX32 };
    sha256 = item.sha256;
    await sink.write(localHeader(h));
    if (item.body.length > 0) await sink.write(item.body);
  }
  centralRecord(h, opts.forceZip64, central);
  return sha256;
}

async function writeStreamed(sink: Sink, entry: ContextEntry, base: HeaderBase, opts: Options): Promise<{ h: Header; sha256: string }> {
  const fh = await openEntry(entry);
  const hash = createHash('sha256');
  try {
    if (isStoredByName(entry.path) || !(await deflateShrinks(fh, entry, opts.level))) {
      // A first pass for the CRC, so the header is complete: several readers (Java's ZipInputStream
      // among them) reject a stored entry followed by a data descriptor.
      let crc = 0;
      for await (const chunk of readChunks(fh, entry)) crc = crc32(chunk, crc);
      const zip64 = opts.forceZip64 || entry.size >= MAX32 || base.offset >= MAX32;
      const h: Header = { ...base, method: STORE, crc, compressedSize: entry.size, size: entry.size, zip64 };
      await sink.write(localHeader(h));
      let again = 0;
      for await (const chunk of readChunks(fh, entry)) {
        again = crc32(chunk, again);
        hash.update(chunk);
        await sink.write(chunk);
      }
      if (again !== crc) throw changed(entry);
      return { h, sha256: hash.digest('hex') };
    }

    const zip64 = opts.forceZip64 || entry.size >= STREAMED_ZIP64_FROM || base.offset >= MAX32;
    const h: Header = { ...base, flags: base.flags | FLAG_DATA_DESCRIPTOR, method: DEFLATE, crc: 0, compressedSize: 0, size: 0, zip64 };
    await sink.write(localHeader(h));
    let crc = 0;
    let compressedSize = 0;
    const chunks = async function* (): AsyncGenerator<Buffer> {
      for await (const chunk of readChunks(fh, entry)) {
        crc = crc32(chunk, crc);
        hash.update(chunk);
        yield chunk;
      }
    };
    await pipeline(
      Readable.from(chunks(), { highWaterMark: 1 }), // read one chunk ahead, not sixteen
      zlib.createDeflateRaw({ level: opts.level, chunkSize: 64 * 1024 }),
      async (deflated: AsyncIterable<Buffer>) => {
        for await (const out of deflated) {
          compressedSize += out.length;
          await sink.write(out);
        }
      },
    );
    if (!zip64 && compressedSize >= MAX32) throw new Error(`${entry.path}: compressed size reached 4 GiB without ZIP64`);
    Object.assign(h, { crc, compressedSize, size: entry.size });
    await sink.write(dataDescriptor(h));
    return { h, sha256: hash.digest('hex') };
  } finally {
    await fh.close();
  }
}

/** Decides from the first 64 KiB, so a large file is read only once more. */
async function deflateShrinks(fh: FileHandle, entry: ContextEntry, level: number): Promise<boolean> {
  const sample = Buffer.alloc(Math.min(SAMPLE, entry.size));
  const { bytesRead } = await fh.read(sample, 0, sample.length, 0);
  const deflated = await deflateRaw(sample.subarray(0, bytesRead), { level });
  return deflated.length < bytesRead * 0.98;
}

/** Reads the whole file in fresh buffers (the deflate stream holds them); checks the size held. */
async function* readChunks(fh: FileHandle, entry: ContextEntry): AsyncGenerator<Buffer> {
  let position = 0;
  for (;;) {
    const buf = Buffer.allocUnsafe(CHUNK);
    const { bytesRead } = await fh.read(buf, 0, CHUNK, position);
    if (bytesRead === 0) break;
    position += bytesRead;
    if (position > entry.size) throw changed(entry);
    yield buf.subarray(0, bytesRead);
  }
  if (position !== entry.size) throw changed(entry);
}

function localHeader(h: Header): Buffer {
  // A ZIP64 local header carries both sizes in the extra field (zeros when a data descriptor follows).
  const extraLength = h.zip64 ? 20 : 0;
  const b = Buffer.allocUnsafe(30 + h.name.length + extraLength); // from the shared pool; every byte is written
  b.writeUInt32LE(0x04034b50, 0);
  b.writeUInt16LE(h.zip64 ? 45 : 20, 4);
  b.writeUInt16LE(h.flags, 6);
  b.writeUInt16LE(h.method, 8);
  b.writeUInt16LE(0, 10); // time
  b.writeUInt16LE(DOS_DATE, 12);
  b.writeUInt32LE(h.crc, 14);
  b.writeUInt32LE(h.zip64 ? MAX32 : h.compressedSize, 18);
  b.writeUInt32LE(h.zip64 ? MAX32 : h.size, 22);
  b.writeUInt16LE(h.name.length, 26);
  b.writeUInt16LE(extraLength, 28);
  h.name.copy(b, 30);
  if (h.zip64) writeZip64Extra(b, 30 + h.name.length, [h.size, h.compressedSize]);
  return b;
}

function dataDescriptor(h: Header): Buffer {
  const b = Buffer.alloc(h.zip64 ? 24 : 16);
  b.writeUInt32LE(0x08074b50, 0);
  b.writeUInt32LE(h.crc, 4);
  if (h.zip64) {
    b.writeBigUInt64LE(BigInt(h.compressedSize), 8);
    b.writeBigUInt64LE(BigInt(h.size), 16);
  } else {
    b.writeUInt32LE(h.compressedSize, 8);
    b.writeUInt32LE(h.size, 12);
  }
  return b;
}

function centralRecord(h: Header, force: boolean, central: Slabs): void {
  // The ZIP64 extra holds exactly the fields set to 0xFFFFFFFF in the record, in this order.
  const values = [h.size, h.compressedSize, h.offset];
  const wide = values.map((v) => force || v >= MAX32);
  const wideValues = values.filter((_, i) => wide[i]);
  const extraLength = wideValues.length > 0 ? 4 + 8 * wideValues.length : 0;
  const b = central.take(46 + h.name.length + extraLength);
  b.writeUInt32LE(0x02014b50, 0);
  b.writeUInt16LE(MADE_BY_UNIX, 4);
  b.writeUInt16LE(h.zip64 || extraLength > 0 ? 45 : 20, 6);
  b.writeUInt16LE(h.flags, 8);
  b.writeUInt16LE(h.method, 10);
  // 12: time 0
  b.writeUInt16LE(DOS_DATE, 14);
  b.writeUInt32LE(h.crc, 16);
  b.writeUInt32LE(wide[1] ? MAX32 : h.compressedSize, 20);
  b.writeUInt32LE(wide[0] ? MAX32 : h.size, 24);
  b.writeUInt16LE(h.name.length, 28);
  b.writeUInt16LE(extraLength, 30);
  // 32: comment length, 34: disk number, 36: internal attributes, all 0
  b.writeUInt32LE(h.attrs, 38);
  b.writeUInt32LE(wide[2] ? MAX32 : h.offset, 42);
  h.name.copy(b, 46);
  if (extraLength > 0) writeZip64Extra(b, 46 + h.name.length, wideValues);
}

function writeZip64Extra(b: Buffer, at: number, values: number[]): void {
  b.writeUInt16LE(0x0001, at);
  b.writeUInt16LE(8 * values.length, at + 2);
  values.forEach((v, i) => b.writeBigUInt64LE(BigInt(v), at + 4 + 8 * i));
}

function endOfCentralDirectory(count: number, cdOffset: number, cdSize: number, force: boolean): Buffer {
  const zip64 = force || count >= MAX16 || cdOffset >= MAX32 || cdSize >= MAX32;
  const b = Buffer.alloc(zip64 ? 56 + 20 + 22 : 22);
  if (zip64) {
    b.writeUInt32LE(0x06064b50, 0);
    b.writeBigUInt64LE(44n, 4); // size of the rest of the record
    b.writeUInt16LE(MADE_BY_UNIX, 12);
    b.writeUInt16LE(45, 14);
    // 16: this disk, 20: disk with the central directory, both 0
    b.writeBigUInt64LE(BigInt(count), 24);
    b.writeBigUInt64LE(BigInt(count), 32);
    b.writeBigUInt64LE(BigInt(cdSize), 40);
    b.writeBigUInt64LE(BigInt(cdOffset), 48);
    // the locator
    b.writeUInt32LE(0x07064b50, 56);
    b.writeBigUInt64LE(BigInt(cdOffset + cdSize), 64);
    b.writeUInt32LE(1, 72); // total number of disks
  }
  const eocd = b.subarray(b.length - 22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(Math.min(count, MAX16), 8);
  eocd.writeUInt16LE(Math.min(count, MAX16), 10);
  eocd.writeUInt32LE(Math.min(cdSize, MAX32), 12);
  eocd.writeUInt32LE(Math.min(cdOffset, MAX32), 16);
  return b;
}

/** zlib.crc32 (Node 20.15+, the floor in package.json engines). */
const crc32 = (data: Buffer, value = 0): number => zlib.crc32(data, value);
