/**
 * The ZIP byte layout: a Header in, its local header, data descriptor and central directory record out (ZIP64
 * when needed), then the end of central directory; also the central directory's slabs and crc32.
 */
import zlib from 'node:zlib';

export const STORE = 0;
export const DEFLATE = 8;
const MAX16 = 0xffff;
export const MAX32 = 0xffffffff;
/** 1980-01-01, the earliest DOS date; the DOS time 00:00:00 is 0. */
const DOS_DATE = (1 << 5) | 1;
const MADE_BY_UNIX = (3 << 8) | 63;
export const FLAG_DATA_DESCRIPTOR = 0x0008;
export const FLAG_UTF8 = 0x0800;
export const MSDOS_DIRECTORY = 0x10;

/** Write buffers, central directory slabs and streamed reads are 1 MiB. */
export const CHUNK = 1024 * 1024;

export interface Header {
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
export type HeaderBase = Pick<Header, 'name' | 'flags' | 'attrs' | 'offset'>;

/** Central directory records packed into 1 MiB slabs: one object per MiB rather than one per entry. */
export class Slabs {
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

export function localHeader(h: Header): Buffer {
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

export function dataDescriptor(h: Header): Buffer {
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

export function centralRecord(h: Header, force: boolean, central: Slabs): void {
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

export function endOfCentralDirectory(count: number, cdOffset: number, cdSize: number, force: boolean): Buffer {
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
export const crc32 = (data: Buffer, value = 0): number => zlib.crc32(data, value);
