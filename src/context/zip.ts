/**
 * The packer: writes a context listing as a deterministic ZIP (ZIP64 when needed) and hashes it while
 * writing. Same entries and contents give the same bytes on the same Node build: entries keep the listing
 * order, every timestamp is 1980-01-01 00:00 (DOS time, no extended-timestamp field), no uid/gid is stored,
 * and "version made by" is UNIX so unzip restores modes and symlinks.
 *
 * Files are read and deflated ahead of the writer within a fixed byte budget, larger ones are streamed, and
 * only a handful of files is open at once, so memory does not grow with the bytes in the context (only the
 * central directory grows with the number of entries, about 60 bytes plus the name each).
 *
 * Entries in (made ready ahead by prepare.ts), archive bytes out (laid out by zip-format.ts).
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import zlib from 'node:zlib';
import { assertOpenedInside, type ContextEntry } from './listing';
import { ContextDigest } from './digest';
import { ContextError } from '../shared/errors';
import { FilePool, looksIncompressible } from './pack-files';
import { changed, DEFAULT_LEVEL, isStoredByName, type PrepareOptions, type Prepared, prepareInOrder } from './prepare';
import {
  centralRecord,
  CHUNK,
  crc32,
  dataDescriptor,
  DEFLATE,
  endOfCentralDirectory,
  FLAG_DATA_DESCRIPTOR,
  FLAG_UTF8,
  type Header,
  type HeaderBase,
  localHeader,
  MAX32,
  MSDOS_DIRECTORY,
  Slabs,
  STORE,
} from './zip-format';

export interface PackOptions {
  /** Deflate level, default 6 (as `zip -6`). */
  level?: number;
  /** Files larger than this are streamed instead of read whole; default 2 MiB. */
  streamThreshold?: number;
  /** Write ZIP64 records even when not needed (tests). */
  forceZip64?: boolean;
  /**
   * Worker threads reading and deflating files (0: all on this thread); default one fewer than cores, at least
   * one (this thread packs too), or none for a context under 4 MiB. Ignored with `pool`.
   */
  workers?: number;
  /** A pool to use (and leave open), e.g. the one hashContext used. */
  pool?: FilePool;
  /** Each entry's file SHA-256 from hashContext: a file whose content differs fails as changed. */
  expected?: (string | undefined)[];
}

type Options = PrepareOptions & { forceZip64: boolean };

const NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW;

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

/** Where the archive bytes go, in order, about 1 MiB per call. The buffers are reused once write resolves. */
export interface ArchiveTarget {
  write(buffers: Buffer[]): Promise<void>;
}

/**
 * Packs `entries` (as listed by listContext) into `outFile`, with the SHA-256 of the archive bytes. Throws
 * ContextError if a file changed meanwhile.
 */
export async function packContext(entries: ContextEntry[], outFile: string, options: PackOptions = {}): Promise<Archive & { file: string; sha256: string }> {
  const fh = await open(outFile, 'w');
  const hash = createHash('sha256');
  try {
    const write = async (buffers: Buffer[]) => {
      for (const b of buffers) hash.update(b);
      await writeAll(fh, buffers);
    };
    const archive = await packContextTo(entries, { write }, options);
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
  const pool = given ?? new FilePool(workers ?? workersFor(entries));
  try {
    const sink = new Sink(target);
    const central = new Slabs();
    const digest = new ContextDigest(opts.level);
    for await (const batch of prepareInOrder(entries, opts, pool)) {
      for (const item of batch) {
        digest.add(item.entry, 'streamed' in item ? await writeStreamedEntry(sink, item, central, opts) : writeReady(sink, item, central, opts));
        if (sink.due) await sink.flush();
      }
    }
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

/** Below this many bytes of files, packing on this thread is done before worker threads would have started (about 80 ms each). */
export const SERIAL_BELOW = 4 * 1024 * 1024;

/** Worker threads for packing `entries`: none for a small context (each costs a new Node thread), else the pool's default. */
export function workersFor(entries: ContextEntry[]): number | undefined {
  return entries.reduce((n, e) => n + e.size, 0) < SERIAL_BELOW ? 0 : undefined;
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

async function writeAll(fh: FileHandle, buffers: Buffer[]): Promise<void> {
  let { bytesWritten } = await fh.writev(buffers);
  // A regular file takes a whole writev; this finishes one cut short anyway.
  for (const b of buffers) {
    for (let done = Math.min(bytesWritten, b.length); done < b.length; ) done += (await fh.write(b, done)).bytesWritten;
    bytesWritten = Math.max(0, bytesWritten - b.length);
  }
}

/**
 * Sequential writer handing the target about 1 MiB at a time. Large buffers are passed on, not copied, and
 * given back (`afterWrite`) once written: copying every body into fresh 1 MiB buffers cost a tenth of the packer's
 * time, most of it page faults. Small ones (headers, small files' bodies) are copied into one reused buffer: a
 * context of small files otherwise handed the target (a writev, the archive hash) thousands of tiny buffers.
 */
class Sink {
  offset = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private written: (() => void)[] = [];
  /** Small writes land here, from `joinedFrom` on; reused once the target has taken it. */
  private readonly joined = Buffer.allocUnsafeSlow(CHUNK);
  private joinedFrom = 0;
  private joinedTo = 0;

  constructor(private readonly target: ArchiveTarget) {}

  async write(b: Buffer): Promise<void> {
    this.put(b);
    if (this.due) await this.flush();
  }

  /** Adds `b` without flushing: the caller flushes once `due`. */
  put(b: Buffer): void {
    this.offset += b.length;
    this.pendingBytes += b.length;
    if (b.length <= COPIED_UP_TO && this.joinedTo + b.length <= this.joined.length) {
      this.joinedTo += b.copy(this.joined, this.joinedTo);
    } else {
      this.endJoined();
      this.pending.push(b);
    }
  }

  /** A chunk's worth is waiting for the target. */
  get due(): boolean {
    return this.pendingBytes >= CHUNK;
  }

  /** Runs `done` once everything written so far has reached the target. */
  afterWrite(done: () => void): void {
    if (this.pendingBytes === 0) done();
    else this.written.push(done);
  }

  async flush(): Promise<void> {
    this.endJoined();
    if (this.pending.length === 0) return;
    const buffers = this.pending;
    const written = this.written;
    this.pending = [];
    this.pendingBytes = 0;
    this.written = [];
    await this.target.write(buffers);
    this.joinedFrom = this.joinedTo = 0;
    for (const done of written) done();
  }

  /** Closes the run of small writes, so a large buffer that follows keeps its place in the order. */
  private endJoined(): void {
    if (this.joinedTo === this.joinedFrom) return;
    this.pending.push(this.joined.subarray(this.joinedFrom, this.joinedTo));
    this.joinedFrom = this.joinedTo;
  }
}

/** Writes up to this size are copied into the Sink's buffer rather than passed on. */
const COPIED_UP_TO = 16 * 1024;

/** A streamed deflate entry this large gets ZIP64 sizes up front: its compressed size is known only at the end. */
const STREAMED_ZIP64_FROM = 0xf0000000;
const SAMPLE = 4096;

function headerBase(entry: ContextEntry, offset: number): HeaderBase {
  return {
    name: Buffer.from(entry.kind === 'directory' ? `${entry.path}/` : entry.path),
    flags: /^[\x20-\x7e]*$/.test(entry.path) ? 0 : FLAG_UTF8,
    attrs: (((entry.mode & 0xffff) << 16) | (entry.kind === 'directory' ? MSDOS_DIRECTORY : 0)) >>> 0,
    offset,
  };
}

/**
 * Writes an entry whose body is in memory and adds its central directory record; returns a file's content
 * SHA-256. Synchronous (the caller flushes when `sink.due`): an await per entry was a good part of the
 * writer's time on contexts of many small files.
 */
function writeReady(sink: Sink, item: Exclude<Prepared, { streamed: true }>, central: Slabs, opts: Options): string | undefined {
  const base = headerBase(item.entry, sink.offset);
  const h: Header = { ...base, method: item.method, crc: item.crc, compressedSize: item.body.length, size: item.size, zip64: opts.forceZip64 || base.offset >= MAX32 };
  sink.put(localHeader(h));
  if (item.body.length > 0) sink.put(item.body);
  if (item.release) sink.afterWrite(item.release);
  centralRecord(h, opts.forceZip64, central);
  return item.sha256;
}

/** Writes an entry too large to hold in memory and adds its central directory record; returns its content SHA-256. */
async function writeStreamedEntry(sink: Sink, item: Extract<Prepared, { streamed: true }>, central: Slabs, opts: Options): Promise<string> {
  const { h, sha256 } = await writeStreamed(sink, item.entry, headerBase(item.entry, sink.offset), opts);
  if (opts.expected && opts.expected[item.index] !== sha256) throw changed(item.entry);
  centralRecord(h, opts.forceZip64, central);
  return sha256;
}

async function writeStreamed(sink: Sink, entry: ContextEntry, base: HeaderBase, opts: Options): Promise<{ h: Header; sha256: string }> {
  const fh = await openEntry(entry);
  const hash = createHash('sha256');
  try {
    if (isStoredByName(entry.path) || (await startsIncompressible(fh, entry, opts.level))) {
      // A first pass for the CRC, so the header is complete: several readers (Java's ZipInputStream
      // among them) reject a stored entry followed by a data descriptor. Both passes read into one buffer
      // (fresh memory costs a page fault per 4 KiB): each chunk is written out before the next is read.
      const buffer = Buffer.allocUnsafeSlow(CHUNK);
      let crc = 0;
      for await (const chunk of readChunks(fh, entry, buffer)) crc = crc32(chunk, crc);
      const zip64 = opts.forceZip64 || entry.size >= MAX32 || base.offset >= MAX32;
      const h: Header = { ...base, method: STORE, crc, compressedSize: entry.size, size: entry.size, zip64 };
      await sink.write(localHeader(h));
      let again = 0;
      for await (const chunk of readChunks(fh, entry, buffer)) {
        again = crc32(chunk, again);
        hash.update(chunk);
        sink.put(chunk);
        await sink.flush();
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

/** Decides from the first 4 KiB (looksIncompressible), so a large file is read only once more. */
async function startsIncompressible(fh: FileHandle, entry: ContextEntry, level: number): Promise<boolean> {
  const start = Buffer.alloc(Math.min(SAMPLE, entry.size));
  const { bytesRead } = await fh.read(start, 0, start.length, 0);
  if (bytesRead < start.length) throw changed(entry);
  return looksIncompressible(start, entry.size, level, zlib);
}

/**
 * Reads the whole file, chunk by chunk into `buffer` (the caller is done with a chunk before asking for the
 * next) or into fresh buffers (the deflate stream holds them); checks the size held.
 */
async function* readChunks(fh: FileHandle, entry: ContextEntry, buffer?: Buffer): AsyncGenerator<Buffer> {
  let position = 0;
  for (;;) {
    const buf = buffer ?? Buffer.allocUnsafe(CHUNK);
    const { bytesRead } = await fh.read(buf, 0, CHUNK, position);
    if (bytesRead === 0) break;
    position += bytesRead;
    if (position > entry.size) throw changed(entry);
    yield buf.subarray(0, bytesRead);
  }
  if (position !== entry.size) throw changed(entry);
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
