/**
 * The packer: writes a context listing as a deterministic ZIP (with ZIP64 when needed) and hashes it
 * while writing. Same entries and contents give the same bytes: entries keep the listing order, every
 * timestamp is 1980-01-01 00:00 (DOS time, no extended-timestamp fields) and no uid/gid is stored.
 *
 * Small files are read and deflated a few at a time on libuv's thread pool, ahead of the writer, within a
 * fixed byte budget; larger files are streamed. So memory does not grow with the context's size and only
 * a bounded number of files is open at once.
 */
import { createHash } from 'node:crypto';
import { closeSync, constants, openSync, readFileSync } from 'node:fs';
import { open, rm, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import type { ContextEntry } from './context';
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

/** Extensions whose content is already compressed; deflating them costs time and gains nothing. */
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
/** DOS date 1980-01-01 (the earliest DOS time); DOS time 00:00:00 is 0. */
const DOS_DATE = (1 << 5) | 1;
const MADE_BY_UNIX = (3 << 8) | 63;
const FLAG_DATA_DESCRIPTOR = 0x0008;
const FLAG_UTF8 = 0x0800;
const MSDOS_DIR = 0x10;
/** A streamed deflate entry of at least this size gets ZIP64 sizes, as its compressed size is known only afterwards. */
const STREAMED_ZIP64_FROM = 0xf0000000;

const AHEAD_ENTRIES = 64;
/** Medium files deflated at once: one per libuv thread; more only queue, holding their buffers. */
const POOL_TASKS = Number(process.env.UV_THREADPOOL_SIZE) || 4;
/** Files up to this size are read and deflated synchronously (see prepare). */
const SYNC_MAX = 64 * 1024;
const AHEAD_BYTES = 4 * 1024 * 1024;
const CHUNK = 1024 * 1024;
const SAMPLE = 64 * 1024;

const deflateRaw = promisify(zlib.deflateRaw);

/** Packs `entries` (as listed by listContext) into `outFile`. Throws ContextError if a file changed meanwhile. */
export async function packContext(entries: ContextEntry[], outFile: string, options: PackOptions = {}): Promise<Archive> {
  const opts: Required<PackOptions> = { level: 6, streamThreshold: 2 * 1024 * 1024, forceZip64: false, ...options };
  const fh = await open(outFile, 'w');
  const sink = new Sink(fh);
  try {
    const central: Buffer[] = [];
    for await (const item of prepareInOrder(entries, opts)) central.push(await writeEntry(sink, item, opts));
    const cdOffset = sink.offset;
    for (const record of central) await sink.write(record);
    await sink.write(endOfCentralDirectory(central.length, cdOffset, sink.offset - cdOffset, opts.forceZip64));
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

/** Sequential writer that hashes exactly the bytes it writes. */
class Sink {
  readonly hash = createHash('sha256');
  offset = 0;
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly fh: FileHandle) {}

  async write(b: Buffer): Promise<void> {
    this.hash.update(b);
    this.offset += b.length;
    this.pending.push(b);
    this.pendingBytes += b.length;
    if (this.pendingBytes >= CHUNK) await this.flush();
  }

  async flush(): Promise<void> {
    const buf = Buffer.concat(this.pending, this.pendingBytes);
    this.pending = [];
    this.pendingBytes = 0;
    for (let done = 0; done < buf.length; ) done += (await this.fh.write(buf, done)).bytesWritten;
  }
}

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
      if (streamed) ready = Promise.resolve({ entry, streamed });
      else if (pooled) {
        onPool++;
        ready = prepareOnPool(entry, opts.level).finally(() => onPool--);
      } else ready = new Promise((resolve) => resolve(prepareNow(entry, opts.level)));
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

/**
 * Small files are read and deflated synchronously: per file, the fixed cost of async calls (thread-pool
 * round trips, a zlib stream object) dwarfs the work. Medium files go to the thread pool, in parallel.
 */
function prepareNow(entry: ContextEntry, level: number): Prepared {
  if (entry.kind === 'directory') return { entry, method: STORE, crc: 0, size: 0, body: EMPTY };
  const data = entry.kind === 'symlink' ? Buffer.from(entry.linkTarget ?? '') : readSmallFile(entry);
  const crc = crc32(data);
  if (data.length === 0 || isStoredByName(entry.path)) return { entry, method: STORE, crc, size: data.length, body: data };
  // Sized to the file: a window larger than the file gains nothing, and the default 16 KiB output chunk
  // would be kept alive by the result slice, leaving garbage that outgrows the data for tiny files.
  const windowBits = Math.min(15, Math.max(9, Math.ceil(Math.log2(data.length))));
  const chunkSize = Math.max(64, Math.min(data.length + 64, 64 * 1024));
  return choose(entry, crc, data, zlib.deflateRawSync(data, { level, windowBits, chunkSize }));
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
  return choose(entry, crc, data, await deflateRaw(data, { level }));
}

/** Stores the data when deflate does not shrink it, as Info-ZIP does. */
function choose(entry: ContextEntry, crc: number, data: Buffer, deflated: Buffer): Prepared {
  return deflated.length < data.length
    ? { entry, method: DEFLATE, crc, size: data.length, body: deflated }
    : { entry, method: STORE, crc, size: data.length, body: data };
}

function readSmallFile(entry: ContextEntry): Buffer {
  let fd: number;
  try {
    fd = openSync(entry.absPath, NO_FOLLOW);
  } catch (e) {
    throw openError(entry, e);
  }
  try {
    const data = readFileSync(fd);
    if (data.length !== entry.size) throw changed(entry);
    return data;
  } finally {
    closeSync(fd);
  }
}

/** O_NOFOLLOW: a file swapped for a symlink after listing must not pull in data from outside the context. */
const NO_FOLLOW = constants.O_RDONLY | constants.O_NOFOLLOW;

async function openEntry(entry: ContextEntry): Promise<FileHandle> {
  try {
    return await open(entry.absPath, NO_FOLLOW);
  } catch (e) {
    throw openError(entry, e);
  }
}

function openError(entry: ContextEntry, e: unknown): ContextError {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ELOOP' || code === 'ENOENT') return changed(entry);
  return new ContextError(`Cannot read ${entry.path} in the build context: ${(e as Error).message}. Make it readable or add it to .dockerignore.`);
}

function changed(entry: ContextEntry): ContextError {
  return new ContextError(`${entry.path} changed while the build context was being packed; run the job again once nothing writes to the context.`);
}

function isStoredByName(p: string): boolean {
  return STORED_EXTENSIONS.has(path.posix.extname(p).toLowerCase());
}

interface Header {
  name: Buffer;
  method: number;
  flags: number;
  crc: number;
  compressedSize: number;
  size: number;
  offset: number;
  zip64: boolean;
  attrs: number;
}

/** Writes one entry and returns its central directory record. */
async function writeEntry(sink: Sink, item: Prepared, opts: Required<PackOptions>): Promise<Buffer> {
  const { entry } = item;
  const name = Buffer.from(entry.kind === 'directory' ? `${entry.path}/` : entry.path);
  const base = {
    name,
    flags: /^[\x20-\x7e]*$/.test(entry.path) ? 0 : FLAG_UTF8,
    offset: sink.offset,
    attrs: (((entry.mode & 0xffff) << 16) | (entry.kind === 'directory' ? MSDOS_DIR : 0)) >>> 0,
  };
  if ('streamed' in item) return writeStreamed(sink, entry, base, opts);
  const h: Header = {
    ...base,
    method: item.method,
    crc: item.crc,
    compressedSize: item.body.length,
    size: item.size,
    zip64: opts.forceZip64 || base.offset >= MAX32,
  };
  await sink.write(localHeader(h));
  if (item.body.length > 0) await sink.write(item.body);
  return centralRecord(h, opts.forceZip64);
}

type HeaderBase = Pick<Header, 'name' | 'flags' | 'offset' | 'attrs'>;

async function writeStreamed(sink: Sink, entry: ContextEntry, base: HeaderBase, opts: Required<PackOptions>): Promise<Buffer> {
  const fh = await openEntry(entry);
  try {
    if (isStoredByName(entry.path) || !(await deflateShrinks(fh, entry, opts.level))) {
      // Stored entries get sizes and CRC up front (a first pass for the CRC): several readers, Java's
      // ZipInputStream among them, reject a stored entry with a data descriptor.
      const crc = await checksum(fh, entry);
      const h: Header = { ...base, method: STORE, crc, compressedSize: entry.size, size: entry.size, zip64: opts.forceZip64 || entry.size >= MAX32 || base.offset >= MAX32 };
      await sink.write(localHeader(h));
      let again = 0;
      for await (const chunk of readChunks(fh, entry)) {
        again = crc32(chunk, again);
        await sink.write(chunk);
      }
      if (again !== crc) throw changed(entry);
      return centralRecord(h, opts.forceZip64);
    }
    const h: Header = {
      ...base,
      method: DEFLATE,
      flags: base.flags | FLAG_DATA_DESCRIPTOR,
      crc: 0,
      compressedSize: 0,
      size: 0,
      zip64: opts.forceZip64 || entry.size >= STREAMED_ZIP64_FROM || base.offset >= MAX32,
    };
    await sink.write(localHeader(h));
    let crc = 0;
    let compressedSize = 0;
    const chunks = async function* () {
      for await (const chunk of readChunks(fh, entry)) {
        crc = crc32(chunk, crc);
        yield chunk;
      }
    };
    await pipeline(
      Readable.from(chunks(), { highWaterMark: 1 }), // read ahead one chunk, not sixteen
      zlib.createDeflateRaw({ level: opts.level, chunkSize: 64 * 1024 }),
      async (deflated: AsyncIterable<Buffer>) => {
        for await (const out of deflated) {
          compressedSize += out.length;
          await sink.write(out);
        }
      },
    );
    if (!h.zip64 && compressedSize >= MAX32) throw new Error(`${entry.path}: compressed size exceeds 4 GiB without ZIP64`);
    Object.assign(h, { crc, compressedSize, size: entry.size });
    await sink.write(dataDescriptor(h));
    return centralRecord(h, opts.forceZip64);
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

async function checksum(fh: FileHandle, entry: ContextEntry): Promise<number> {
  let crc = 0;
  for await (const chunk of readChunks(fh, entry)) crc = crc32(chunk, crc);
  return crc;
}

/** Reads the whole file in fresh buffers (the sink keeps them until it flushes); checks the size held. */
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
  // A ZIP64 local header carries both sizes (zero when a data descriptor follows).
  const extra = h.zip64 ? zip64Extra([h.size, h.compressedSize]) : EMPTY;
  const b = Buffer.alloc(30);
  b.writeUInt32LE(0x04034b50, 0);
  b.writeUInt16LE(h.zip64 ? 45 : 20, 4);
  b.writeUInt16LE(h.flags, 6);
  b.writeUInt16LE(h.method, 8);
  b.writeUInt16LE(0, 10); // time
  b.writeUInt16LE(DOS_DATE, 12);
  b.writeUInt32LE(h.crc, 14);
  b.writeUInt32LE(extra.length > 0 ? MAX32 : h.compressedSize, 18);
  b.writeUInt32LE(extra.length > 0 ? MAX32 : h.size, 22);
  b.writeUInt16LE(h.name.length, 26);
  b.writeUInt16LE(extra.length, 28);
  return Buffer.concat([b, h.name, extra]);
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

function centralRecord(h: Header, force: boolean): Buffer {
  // The ZIP64 extra carries exactly the fields that are 0xFFFFFFFF in the record, in this order.
  const wide = [h.size, h.compressedSize, h.offset].map((v) => force || v >= MAX32);
  const extra = wide.some(Boolean) ? zip64Extra([h.size, h.compressedSize, h.offset].filter((_, i) => wide[i])) : EMPTY;
  const b = Buffer.alloc(46);
  b.writeUInt32LE(0x02014b50, 0);
  b.writeUInt16LE(MADE_BY_UNIX, 4);
  b.writeUInt16LE(h.zip64 || extra.length > 0 ? 45 : 20, 6);
  b.writeUInt16LE(h.flags, 8);
  b.writeUInt16LE(h.method, 10);
  b.writeUInt16LE(0, 12); // time
  b.writeUInt16LE(DOS_DATE, 14);
  b.writeUInt32LE(h.crc, 16);
  b.writeUInt32LE(wide[1] ? MAX32 : h.compressedSize, 20);
  b.writeUInt32LE(wide[0] ? MAX32 : h.size, 24);
  b.writeUInt16LE(h.name.length, 28);
  b.writeUInt16LE(extra.length, 30);
  // comment length, disk number start, internal attributes: 0
  b.writeUInt32LE(h.attrs, 38);
  b.writeUInt32LE(wide[2] ? MAX32 : h.offset, 42);
  return Buffer.concat([b, h.name, extra]);
}


function zip64Extra(values: number[]): Buffer {
  const b = Buffer.alloc(4 + 8 * values.length);
  b.writeUInt16LE(0x0001, 0);
  b.writeUInt16LE(8 * values.length, 2);
  values.forEach((v, i) => b.writeBigUInt64LE(BigInt(v), 4 + 8 * i));
  return b;
}

function endOfCentralDirectory(count: number, cdOffset: number, cdSize: number, force: boolean): Buffer {
  const zip64 = force || count >= MAX16 || cdOffset >= MAX32 || cdSize >= MAX32;
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(Math.min(count, MAX16), 8);
  eocd.writeUInt16LE(Math.min(count, MAX16), 10);
  eocd.writeUInt32LE(Math.min(cdSize, MAX32), 12);
  eocd.writeUInt32LE(Math.min(cdOffset, MAX32), 16);
  if (!zip64) return eocd;

  const record = Buffer.alloc(56);
  record.writeUInt32LE(0x06064b50, 0);
  record.writeBigUInt64LE(44n, 4); // size of the rest of this record
  record.writeUInt16LE(MADE_BY_UNIX, 12);
  record.writeUInt16LE(45, 14);
  record.writeBigUInt64LE(BigInt(count), 24);
  record.writeBigUInt64LE(BigInt(count), 32);
  record.writeBigUInt64LE(BigInt(cdSize), 40);
  record.writeBigUInt64LE(BigInt(cdOffset), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(0x07064b50, 0);
  locator.writeBigUInt64LE(BigInt(cdOffset + cdSize), 8);
  locator.writeUInt32LE(1, 16); // total number of disks
  return Buffer.concat([record, locator, eocd]);
}

/** zlib.crc32 exists from Node 20.15 / 22.2; the table version keeps older Node 20 working. */
const crc32: (data: Buffer, value?: number) => number =
  typeof zlib.crc32 === 'function' ? (data, value = 0) => zlib.crc32(data, value) : tableCrc32;

let crcTable: Uint32Array | undefined;
function tableCrc32(data: Buffer, value = 0): number {
  crcTable ??= Uint32Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  let c = ~value >>> 0;
  for (const byte of data) c = crcTable[(c ^ byte) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
