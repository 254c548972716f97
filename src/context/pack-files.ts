/**
 * Reading, hashing and deflating batches of whole files, on worker threads so packing uses every core.
 *
 * `prepareFiles` runs both in this thread (serial packing, tests) and in the workers, which get it as source
 * text (`prepareFiles.toString()`): the program ships as one bundled file, so a worker cannot load a module
 * of its own. Hence its rules: it uses only its parameters (node:fs, node:zlib and node:crypto are passed
 * in), and it holds no inner functions (tsx and esbuild's keepNames would wrap them in a `__name` helper
 * that does not exist in the worker).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import zlib from 'node:zlib';

export interface FileJob {
  absPath: string;
  /** The size the listing saw; any other size means the file changed. */
  size: number;
  /** Deflate level, or -1 to store (already-compressed types). */
  level: number;
  /** Only hash the file (the first pass that names the archive), in 1 MiB reads. */
  hashOnly: boolean;
}

export type FileDone =
  | { method: number; crc: number; sha256: string; start: number; end: number }
  | { failed: 'changed' | 'unreadable'; code: string; message: string };

export interface Batch {
  done: FileDone[];
  /** The entries' bodies back to back; `start`/`end` index into it. */
  bodies: Buffer;
}

/**
 * Reads, hashes and deflates (or stores) each file; see the module comment for the rules this code follows.
 * Each file is read straight to its place in one buffer per batch (from `bodiesFor`, which reuses the buffers
 * of batches already written), and deflated into `scratch`, then copied back over its content: a stored file
 * is never copied, and a batch allocates next to nothing. Fresh memory costs a page fault per 4 KiB on first
 * touch (12 µs or more on the bench machine), and per-file buffers, deflate's output above all, cost about
 * 3,000 of them on 2,000 files.
 */
function prepareFiles(
  jobs: FileJob[],
  nodeFs: typeof fs,
  nodeZlib: typeof zlib,
  nodeCrypto: typeof crypto,
  scratch: Buffer,
  incompressible: typeof looksIncompressible,
  deflate: typeof deflateInto,
  bodiesFor: (capacity: number) => Buffer,
): Batch {
  const done: FileDone[] = [];
  // Room for one byte more than listed per file: the read that reveals a file that grew.
  let capacity = 0;
  for (const job of jobs) if (!job.hashOnly) capacity += job.size + 1;
  const bodies = bodiesFor(capacity);
  const seen = new Int32Array(16384);
  let offset = 0;
  for (const job of jobs) {
    let fd: number;
    try {
      fd = nodeFs.openSync(job.absPath, nodeFs.constants.O_RDONLY | nodeFs.constants.O_NOFOLLOW);
    } catch (e) {
      const code = String((e as NodeJS.ErrnoException).code);
      done.push({ failed: code === 'ELOOP' || code === 'ENOENT' ? 'changed' : 'unreadable', code, message: (e as Error).message });
      continue;
    }
    // The descriptor's own path: a directory on the way swapped for a symlink after listing would lead outside.
    let opened: string;
    try {
      opened = nodeFs.readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      opened = nodeFs.realpathSync(job.absPath);
    }
    if (opened !== job.absPath) {
      nodeFs.closeSync(fd);
      done.push({ failed: 'changed', code: 'MOVED', message: `opened ${opened}` });
      continue;
    }
    // Hashing alone reads in scratch-sized chunks. A file to pack is read whole to its place in bodies, one
    // byte more than listed revealing a file that grew; it is hashed in one call at the end (no Hash object).
    const hash = job.hashOnly ? nodeCrypto.createHash('sha256') : undefined;
    const data = job.hashOnly ? scratch : bodies;
    let total = 0;
    try {
      for (;;) {
        const at = job.hashOnly ? 0 : offset + total;
        const room = job.hashOnly ? scratch.length : job.size + 1 - total;
        const got = nodeFs.readSync(fd, data, at, room, total);
        hash?.update(data.subarray(at, at + got));
        total += got;
        // A short read that ends at the listed size is the end of the file: no further read just to see 0.
        if (got === 0 || total > job.size || (total === job.size && got < room)) break;
      }
    } catch (e) {
      done.push({ failed: 'unreadable', code: String((e as NodeJS.ErrnoException).code), message: (e as Error).message });
      continue;
    } finally {
      nodeFs.closeSync(fd);
    }
    if (total !== job.size) {
      done.push({ failed: 'changed', code: 'SIZE', message: `size ${total}, listed ${job.size}` });
      continue;
    }
    if (hash) {
      done.push({ method: 0, crc: 0, sha256: hash.digest('hex'), start: offset, end: offset });
      continue;
    }
    const content = bodies.subarray(offset, offset + total);
    const sha256 = nodeCrypto.hash('sha256', content, 'hex');
    const crc = nodeZlib.crc32(content);
    let length = total;
    let method = 0;
    if (job.level >= 0 && total > 0 && !incompressible(content, total, job.level, nodeZlib, seen)) {
      const out = total <= scratch.length ? scratch : Buffer.allocUnsafe(total);
      const deflated = deflate(content, job.level, out, nodeZlib);
      if (deflated >= 0) {
        out.copy(bodies, offset, 0, deflated);
        length = deflated;
        method = 8;
      }
    }
    done.push({ method, crc, sha256, start: offset, end: offset + length });
    offset += length;
  }
  return { done, bodies: bodies.subarray(0, offset) };
}

/** What deflateInto uses of a zlib stream beyond Node's documented API (the calls deflateRawSync makes). */
interface DeflateHandle {
  _handle: { writeSync(flush: number, input: Buffer, inOffset: number, inLength: number, out: Buffer, outOffset: number, outLength: number): void; close(): void } | null;
  _writeState: Uint32Array;
}

/**
 * Deflates `content` raw into `out` (at least as long) and returns the deflated length, or -1 when deflate does
 * not shrink it (the entry is then stored, as Info-ZIP does). The same bytes as deflateRawSync with the same
 * level and window, written to a reused buffer: deflateRawSync returns a fresh one per call, and touching fresh
 * memory (a page fault per 4 KiB) cost more than the copy. A window larger than the file gains nothing.
 * Runs in the workers too, so it follows prepareFiles's rules.
 */
export function deflateInto(content: Buffer, level: number, out: Buffer, nodeZlib: typeof zlib): number {
  const total = content.length;
  const windowBits = Math.min(15, Math.max(9, Math.ceil(Math.log2(total))));
  const stream = new nodeZlib.DeflateRaw({ level, windowBits, chunkSize: 64 }) as unknown as DeflateHandle & zlib.DeflateRaw;
  const handle = stream._handle;
  // A zlib error destroys the stream, which then emits 'error': heard here, and deflateRawSync below throws it.
  stream.on('error', Boolean);
  const internals = typeof handle?.writeSync === 'function' && stream._writeState instanceof Uint32Array;
  if (internals) handle.writeSync(nodeZlib.constants.Z_FINISH, content, 0, total, out, 0, total);
  if (!internals || stream.destroyed) {
    const deflated = nodeZlib.deflateRawSync(content, { level, windowBits });
    return deflated.length < total ? deflated.copy(out) : -1;
  }
  // With Z_FINISH, deflate returns with output room left only once the stream is complete.
  const left = stream._writeState[0]!;
  handle!.close();
  stream._handle = null;
  return left > 0 ? total - left : -1;
}

/**
 * The store/deflate rule's shortcut: whether a file of `size` bytes starting with `start` (at least its first
 * 4 KiB) is stored without deflating it whole. Deflating random data costs as much as deflating text and gains
 * nothing, and mixed contexts hold many such files. Files of 4 KiB or less are always tried whole. Larger ones
 * are decided by their first 4 KiB: under 7.5 bits of entropy per byte (text and most binaries hold 4–6;
 * random, compressed or encrypted data about 7.95), deflated; otherwise stored unless deflating those 4 KiB
 * saves 2% (data with short repeats).
 *
 * The trial (60–120 µs a file) is skipped when its answer is sure to be "stored", so the archive is the same.
 * 4 KiB make one deflate block (a block holds 16,383 symbols at zlib's default memLevel), and a block's
 * literals cost at least their entropy in bits, whatever its Huffman code. Matches (3 bytes or more) take bytes
 * out of the literals: each starts at a 3-byte string seen earlier in the sample and covers at most 3 bytes per
 * such string, and each byte taken out lowers the literals' entropy by at most 13.45 bits (log2 4096 + log2 e).
 * So with R strings seen before, the output holds at least `bits - 42 R` bits: stored when that is 32,113 or
 * more (98% of 4 KiB is 4,014.08 bytes). Random data has 0–4 such strings. `seen` (16,384 entries, any
 * content) is best the caller's, reused: a fresh table per file cost more than the counting.
 * Runs in the workers too, so it follows prepareFiles's rules (hence the literal numbers, and no inner function).
 */
export function looksIncompressible(start: Buffer, size: number, level: number, nodeZlib: typeof zlib, seen = new Int32Array(16384)): boolean {
  if (size <= 4096) return false;
  const counts = new Uint32Array(256);
  for (let i = 0; i < 4096; i++) counts[start[i]!]!++;
  let bits = 0;
  for (let b = 0; b < 256; b++) if (counts[b]! > 0) bits -= counts[b]! * Math.log2(counts[b]! / 4096);
  if (bits < 7.5 * 4096) return false;
  // 3-byte strings seen before, in an open-addressed table of string + 1 (0: empty), a quarter full at most.
  seen.fill(0);
  let repeats = 0;
  let string = (start[0]! << 8) | start[1]!;
  for (let i = 2; i < 4096 && bits - 42 * repeats >= 32113; i++) {
    string = ((string << 8) | start[i]!) & 0xffffff;
    let slot = Math.imul(string, 0x9e3779b1) >>> 18;
    while (seen[slot] !== 0 && seen[slot] !== string + 1) slot = (slot + 1) & 16383;
    if (seen[slot] === 0) seen[slot] = string + 1;
    else repeats++;
  }
  if (bits - 42 * repeats >= 32113) return true;
  return nodeZlib.deflateRawSync(start.subarray(0, 4096), { level, windowBits: 12 }).length >= 4096 * 0.98;
}

/** Files up to this size are read into a reused buffer; zip.ts streams files over 2 MiB, so most fit. */
const SCRATCH = 2 * 1024 * 1024 + 1;

/** Batches queued at each worker: it starts the next without waiting for this thread, which may be busy. */
const QUEUED_PER_WORKER = 3;
/** The largest batch this thread runs while a worker could (packing batches are at most 2 MiB; hashing ones 32). */
const HELP_BYTES = 4 * 1024 * 1024;

type Pending = { resolve: (b: Batch) => void; reject: (e: unknown) => void };

/**
 * A batch's bodies buffer, reused when one given back is large enough. Each buffer is its own ArrayBuffer (not
 * the shared pool's), so a worker can transfer it. Fresh memory costs a page fault per 4 KiB touched, which
 * took a tenth of the packer's time. Source text for the workers too, like prepareFiles.
 */
function takeBodies(spare: ArrayBuffer[], capacity: number): Buffer {
  if (capacity === 0) return Buffer.allocUnsafeSlow(0);
  const i = spare.findIndex((b) => b.byteLength >= capacity);
  if (i < 0) return Buffer.allocUnsafeSlow(Math.max(capacity, 3 * 1024 * 1024));
  return Buffer.from(spare.splice(i, 1)[0]!, 0, capacity);
}

/**
 * A worker's young generation, in MB. A batch leaves little alive, but V8 lets the young generation grow to tens
 * of MB of garbage first: on 200,000 files that was 20–50 MB of the packer's peak RSS. Not a heap limit: what
 * outlives it moves to the old generation.
 */
const WORKER_YOUNG_MB = 4;

/** Bodies buffers kept for reuse per thread: enough for the batches in flight. */
const SPARE_BODIES = 4;

/**
 * Runs batches of files on this thread (`size` 0), or on a pool of worker threads and this thread: a queued batch
 * the workers have no room for (QUEUED_PER_WORKER each) runs here, one per turn of the event loop, so the
 * writer keeps going between them. A worker takes about 100 ms to start (two starting at once, 150–200 ms):
 * until one has, this thread runs every batch.
 */
export class FilePool {
  /** Every worker made, started or not. */
  private readonly threads: Worker[] = [];
  /** Each started worker with its batches in the order sent; a worker answers them in that order. */
  private readonly workers = new Map<Worker, Pending[]>();
  private readonly queue: (Pending & { jobs: FileJob[] })[] = [];
  private scratch: Buffer | undefined;
  /** Bodies given back, for batches run on this thread. */
  private readonly spare: ArrayBuffer[] = [];
  /** Bodies of batches run on this thread: given back, they stay here (a worker's go back to a worker). */
  private readonly madeHere = new WeakSet<ArrayBuffer>();
  private next = 0;
  private helping = false;
  private closed = false;

  /**
   * One worker fewer than cores by default, as this thread runs batches too: a worker costs about 90 ms of CPU to
   * start, and one per core left three threads taking turns on two cores (*mixed*: 0.15 CPU-seconds more). At least
   * one: on a one-core runner a worker keeps large batches off this thread's event loop.
   */
  constructor(readonly size = Math.max(1, availableParallelism() - 1)) {
    const source =
      `const { parentPort } = require('node:worker_threads');\n` +
      `const prepareFiles = (${prepareFiles.toString()});\n` +
      `const looksIncompressible = (${looksIncompressible.toString()});\n` +
      `const deflateInto = (${deflateInto.toString()});\n` +
      `const takeBodies = (${takeBodies.toString()});\n` +
      `const scratch = Buffer.allocUnsafeSlow(${SCRATCH});\n` +
      `const spare = [];\n` +
      `const bodiesFor = (capacity) => takeBodies(spare, capacity);\n` +
      `parentPort.on('message', (jobs) => {\n` +
      `  if (jobs instanceof ArrayBuffer) return void (spare.length < ${SPARE_BODIES} && spare.push(jobs));\n` +
      `  const batch = prepareFiles(jobs, require('node:fs'), require('node:zlib'), require('node:crypto'), scratch, looksIncompressible, deflateInto, bodiesFor);\n` +
      `  const b = batch.bodies;\n` +
      `  parentPort.postMessage({ done: batch.done, bodies: b.buffer, length: b.length }, [b.buffer]);\n` +
      `});\n` +
      `parentPort.postMessage('started');\n`;
    for (let i = 0; i < size; i++) {
      const worker = new Worker(source, { eval: true, resourceLimits: { maxYoungGenerationSizeMb: WORKER_YOUNG_MB } });
      const sent: Pending[] = [];
      worker.on('message', (m: 'started' | { done: FileDone[]; bodies: ArrayBuffer; length: number }) => {
        if (m === 'started') this.workers.set(worker, sent);
        else sent.shift()?.resolve({ done: m.done, bodies: Buffer.from(m.bodies, 0, m.length) });
        this.dispatch();
      });
      // A worker that failed takes no more batches: the others, or this thread, run them.
      worker.on('error', (e) => {
        this.workers.delete(worker);
        for (const p of sent.splice(0)) p.reject(e);
        this.dispatch();
      });
      this.threads.push(worker);
    }
  }

  run(jobs: FileJob[]): Promise<Batch> {
    if (this.size === 0) return new Promise((resolve) => resolve(this.runHere(jobs)));
    return new Promise((resolve, reject) => {
      this.queue.push({ jobs, resolve, reject });
      this.dispatch();
    });
  }

  /** Takes back a batch's bodies once they are written and no longer referenced (the buffer is detached). */
  recycle(bodies: Buffer): void {
    const buffer = bodies.buffer as ArrayBuffer;
    if (buffer.byteLength === 0) return;
    if (this.workers.size === 0 || this.madeHere.has(buffer)) {
      if (this.spare.length < SPARE_BODIES) this.spare.push(buffer);
      return;
    }
    const workers = [...this.workers.keys()];
    workers[this.next++ % workers.length]!.postMessage(buffer, [buffer]);
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.threads.map((w) => w.terminate()));
  }

  private runHere(jobs: FileJob[]): Batch {
    const scratch = (this.scratch ??= Buffer.allocUnsafeSlow(SCRATCH));
    const batch = prepareFiles(jobs, fs, zlib, crypto, scratch, looksIncompressible, deflateInto, (n) => takeBodies(this.spare, n));
    this.madeHere.add(batch.bodies.buffer as ArrayBuffer);
    return batch;
  }

  /** Sends queued batches to the least busy started workers, up to QUEUED_PER_WORKER each; this thread runs the rest. */
  private dispatch(): void {
    while (this.queue.length > 0 && this.workers.size > 0) {
      const [worker, sent] = [...this.workers].reduce((a, b) => (b[1].length < a[1].length ? b : a));
      if (sent.length >= QUEUED_PER_WORKER) break;
      const { jobs, ...pending } = this.queue.shift()!;
      sent.push(pending);
      worker.postMessage(jobs);
    }
    this.help();
  }

  /**
   * Runs the next queued batch on this thread, one per turn of the event loop, so the writer, the upload and the
   * workers are heard between batches. Once a worker runs, a batch over HELP_BYTES (a hashing batch, a large
   * file) is left to the workers: on this thread it would hold all of them up.
   */
  private help(): void {
    if (this.helping || this.closed || !this.mayRunHere(this.queue[0])) return;
    this.helping = true;
    setImmediate(() => {
      this.helping = false;
      const next = this.closed || !this.mayRunHere(this.queue[0]) ? undefined : this.queue.shift();
      if (!next) return this.dispatch();
      const { jobs, resolve, reject } = next;
      try {
        resolve(this.runHere(jobs));
      } catch (e) {
        reject(e);
      }
      this.dispatch();
    });
  }

  private mayRunHere(batch: { jobs: FileJob[] } | undefined): boolean {
    return batch !== undefined && (this.workers.size === 0 || batch.jobs.reduce((n, j) => n + j.size, 0) <= HELP_BYTES);
  }
}
