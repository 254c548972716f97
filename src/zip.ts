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
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { assertOpenedInside, type ContextEntry } from './context';
import { ContextError } from './errors';

export interface Archive {
  file: string;
  /** SHA-256 of the archive bytes, hex. */
  sha256: string;
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

/** Files up to this size are read and deflated synchronously (see prepareSmall). */
const SYNC_MAX = 64 * 1024;
/** Medium files deflated at once: one per libuv thread; more would only queue, holding their buffers. */
const POOL_TASKS = Number(process.env.UV_THREADPOOL_SIZE) || 4;
const AHEAD_ENTRIES = 64;
const AHEAD_BYTES = 8 * 1024 * 1024;
const CHUNK = 1024 * 1024;
const SAMPLE = 64 * 1024;

const deflateRaw = promisify(zlib.deflateRaw);
const NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW;

/** Packs `entries` (as listed by listContext) into `outFile`. Throws ContextError if a file changed meanwhile. */
export async function packContext(entries: ContextEntry[], outFile: string, options: PackOptions = {}): Promise<Archive> {
  const opts: Required<PackOptions> = { level: 6, streamThreshold: 2 * 1024 * 1024, forceZip64: false, ...options };
  const fh = await open(outFile, 'w');
  const sink = new Sink(fh);
  try {
    const central = new Slabs();
    for await (const item of prepareInOrder(entries, opts)) await writeEntry(sink, item, central, opts);
    const cdOffset = sink.offset;
    for (const slab of central.slabs()) await sink.write(slab);
    await sink.write(endOfCentralDirectory(central.count, cdOffset, sink.offset - cdOffset, opts.forceZip64));
    await sink.flush();
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(outFile, { force: true });
    throw e;
  }
  return {
    file: outFile,
    sha256: sink.hash.digest('hex'),
    size: sink.offset,
    fileCount: entries.filter((e) => e.kind !== 'directory').length,
    entryCount: entries.length,
  };
}

/** Sequential writer through one reusable buffer; hashes exactly the bytes it writes. */
class Sink {
  readonly hash = createHash('sha256');
  offset = 0;
  private readonly buf = Buffer.allocUnsafe(CHUNK);
  private used = 0;

  constructor(private readonly fh: FileHandle) {}

  async write(b: Buffer): Promise<void> {
    this.hash.update(b);
    this.offset += b.length;
    if (this.used + b.length > CHUNK) await this.flush();
    if (b.length >= CHUNK) return this.writeAll(b);
    b.copy(this.buf, this.used);
    this.used += b.length;
  }

  async flush(): Promise<void> {
    await this.writeAll(this.buf.subarray(0, this.used));
    this.used = 0;
  }

  private async writeAll(b: Buffer): Promise<void> {
    for (let done = 0; done < b.length; ) done += (await this.fh.write(b, done)).bytesWritten;
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

/** An entry ready to write: whole body in memory, or a file to stream. */
type Prepared =
  | { entry: ContextEntry; method: number; crc: number; size: number; body: Buffer }
  | { entry: ContextEntry; streamed: true };

/** Yields entries in order while later ones (up to AHEAD_ENTRIES and AHEAD_BYTES) are read and deflated. */
async function* prepareInOrder(entries: ContextEntry[], opts: Required<PackOptions>): AsyncGenerator<Prepared> {
  const ahead: { cost: number; ready: Promise<Prepared> }[] = [];
  let next = 0;
  let aheadBytes = 0;
  let onPool = 0;
  const fill = (): void => {
    while (next < entries.length && ahead.length < AHEAD_ENTRIES && aheadBytes < AHEAD_BYTES) {
      const entry = entries[next]!;
      const streamed = entry.kind === 'file' && entry.size > opts.streamThreshold;
      const pooled = !streamed && entry.kind === 'file' && entry.size > SYNC_MAX;
      if (pooled && onPool >= POOL_TASKS) break;
      next++;
      let ready: Promise<Prepared>;
      if (streamed) {
        ready = Promise.resolve({ entry, streamed });
      } else if (pooled) {
        onPool++;
        ready = prepareOnPool(entry, opts.level).finally(() => onPool--);
      } else {
        ready = new Promise((resolve) => resolve(prepareSmall(entry, opts.level)));
      }
      ready.catch(() => undefined); // rejections surface when awaited in order below
      const cost = streamed ? 0 : entry.size;
      ahead.push({ cost, ready });
      aheadBytes += cost;
    }
  };
  fill();
  for (let item = ahead.shift(); item; item = ahead.shift()) {
    const prepared = await item.ready;
    aheadBytes -= item.cost;
    fill();
    yield prepared;
  }
}

const readBuffer = Buffer.allocUnsafe(SYNC_MAX + 1);

/**
 * Directories, symlinks and small files, synchronously: per small file the fixed cost of async calls
 * (thread-pool round trips, a zlib stream object) is far larger than the work. Packing 70,000 tiny files
 * took 20 s with async reads and deflates and 1.3 s like this.
 */
function prepareSmall(entry: ContextEntry, level: number): Prepared {
  if (entry.kind === 'directory') return { entry, method: STORE, crc: 0, size: 0, body: EMPTY };
  if (entry.kind === 'symlink') {
    const body = Buffer.from(entry.linkTarget ?? '');
    return { entry, method: STORE, crc: crc32(body), size: body.length, body };
  }
  const data = readSmallFile(entry); // valid until the next call: copied or deflated below
  const crc = crc32(data);
  if (data.length === 0 || isStoredByName(entry.path)) return { entry, method: STORE, crc, size: data.length, body: Buffer.from(data) };
  // A window larger than the file gains nothing; an output chunk sized to the file keeps the garbage
  // per file small (the result is a slice that keeps its whole chunk alive, 16 KiB by default).
  const windowBits = Math.min(15, Math.max(9, Math.ceil(Math.log2(data.length))));
  const deflated = zlib.deflateRawSync(data, { level, windowBits, chunkSize: Math.max(64, data.length + 64) });
  return smaller(entry, crc, data, deflated);
}

/** Deflated, unless deflate did not shrink the data: then stored, as Info-ZIP does. */
function smaller(entry: ContextEntry, crc: number, data: Buffer, deflated: Buffer): Prepared {
  return deflated.length < data.length
    ? { entry, method: DEFLATE, crc, size: data.length, body: deflated }
    : { entry, method: STORE, crc, size: data.length, body: Buffer.from(data) };
}

function readSmallFile(entry: ContextEntry): Buffer {
  let fd: number;
  try {
    fd = openSync(entry.absPath, NO_FOLLOW);
  } catch (e) {
    throw openError(entry, e);
  }
  try {
    assertOpenedInside(fd, entry);
    const want = entry.size + 1; // one byte more than listed reveals a file that grew
    let n = 0;
    for (let got = -1; got !== 0 && n < want; n += got) got = readSync(fd, readBuffer, n, want - n, n);
    if (n !== entry.size) throw changed(entry);
    return readBuffer.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

async function prepareOnPool(entry: ContextEntry, level: number): Promise<Prepared> {
  const fh = await openEntry(entry);
  let data: Buffer;
  try {
    data = await fh.readFile();
  } finally {
    await fh.close();
  }
  if (data.length !== entry.size) throw changed(entry);
  const crc = crc32(data);
  if (isStoredByName(entry.path)) return { entry, method: STORE, crc, size: data.length, body: data };
  return smaller(entry, crc, data, await deflateRaw(data, { level }));
}

/** O_NOFOLLOW and assertOpenedInside: a file or directory swapped for a symlink after listing must not pull in data from outside the context. */
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

/** Writes one entry and adds its central directory record. */
async function writeEntry(sink: Sink, item: Prepared, central: Slabs, opts: Required<PackOptions>): Promise<void> {
  const { entry } = item;
  const base: HeaderBase = {
    name: Buffer.from(entry.kind === 'directory' ? `${entry.path}/` : entry.path),
    flags: /^[\x20-\x7e]*$/.test(entry.path) ? 0 : FLAG_UTF8,
    attrs: (((entry.mode & 0xffff) << 16) | (entry.kind === 'directory' ? MSDOS_DIRECTORY : 0)) >>> 0,
    offset: sink.offset,
  };
  let h: Header;
  if ('streamed' in item) {
    h = await writeStreamed(sink, entry, base, opts);
  } else {
    h = { ...base, method: item.method, crc: item.crc, compressedSize: item.body.length, size: item.size, zip64: opts.forceZip64 || base.offset >= MAX32 };
    await sink.write(localHeader(h));
    if (item.body.length > 0) await sink.write(item.body);
  }
  centralRecord(h, opts.forceZip64, central);
}

async function writeStreamed(sink: Sink, entry: ContextEntry, base: HeaderBase, opts: Required<PackOptions>): Promise<Header> {
  const fh = await openEntry(entry);
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
        await sink.write(chunk);
      }
      if (again !== crc) throw changed(entry);
      return h;
    }

    const zip64 = opts.forceZip64 || entry.size >= STREAMED_ZIP64_FROM || base.offset >= MAX32;
    const h: Header = { ...base, flags: base.flags | FLAG_DATA_DESCRIPTOR, method: DEFLATE, crc: 0, compressedSize: 0, size: 0, zip64 };
    await sink.write(localHeader(h));
    let crc = 0;
    let compressedSize = 0;
    const chunks = async function* (): AsyncGenerator<Buffer> {
      for await (const chunk of readChunks(fh, entry)) {
        crc = crc32(chunk, crc);
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
    return h;
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
