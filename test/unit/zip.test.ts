import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs, { existsSync, mkdirSync, realpathSync, statfsSync, writeFileSync } from 'node:fs';
import { appendFile, chmod, lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import zlib, { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it, vi } from 'vitest';
import yauzl from 'yauzl';
import { listContext } from '../../src/context/listing';
import { ContextError } from '../../src/shared/errors';
import { deflateInto, FilePool, type FileJob, looksIncompressible } from '../../src/context/pack-files';
import { hashContext, prepareInOrder } from '../../src/context/prepare';
import { packContext, type PackOptions, workersFor } from '../../src/context/zip';
import { memoryOutput } from '../helpers/output';
import { prng } from '../helpers/prng';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tempDir(root = tmpdir()): Promise<string> {
  const dir = await mkdtemp(path.join(root, 'zip-'));
  dirs.push(dir);
  return dir;
}

/**
 * /dev/shm when it can hold the ZIP64 test's 70,000 files (each takes a 4 KiB page there: about 280 MB; a
 * container's default /dev/shm is 64 MB): making and removing them takes a second there, on ext4 up to 16 s of CPU.
 */
function roomyTmpfs(): string | undefined {
  if (!existsSync('/dev/shm')) return undefined;
  const shm = statfsSync('/dev/shm');
  return shm.bavail * shm.bsize >= 400 * 1024 * 1024 && shm.ffree >= 100_000 ? '/dev/shm' : undefined;
}

interface ReadEntry {
  name: string;
  method: number;
  madeBy: number;
  mode: number;
  lastModDate: number;
  lastModTime: number;
  extraFields: number;
  data: Buffer;
}

/** Reads every entry with yauzl's strict checks (file names, sizes, CRC). */
function readZip(file: string, withData = true): Promise<ReadEntry[]> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, strictFileNames: true, validateEntrySizes: true }, (err, zip) => {
      if (err) return reject(err);
      const entries: ReadEntry[] = [];
      zip.on('error', reject);
      zip.on('end', () => resolve(entries));
      zip.on('entry', (e: yauzl.Entry) => {
        const base = {
          name: e.fileName,
          method: e.compressionMethod,
          madeBy: e.versionMadeBy >> 8,
          mode: e.externalFileAttributes >>> 16,
          lastModDate: e.lastModFileDate,
          lastModTime: e.lastModFileTime,
          extraFields: e.extraFields.length,
        };
        if (!withData || e.fileName.endsWith('/')) {
          entries.push({ ...base, data: Buffer.alloc(0) });
          return zip.readEntry();
        }
        zip.openReadStream(e, (err2, stream) => {
          if (err2) return reject(err2);
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('error', reject);
          stream.on('end', () => {
            entries.push({ ...base, data: Buffer.concat(chunks) });
            zip.readEntry();
          });
        });
      });
      zip.readEntry();
    });
  });
}

async function pack(dir: string, options?: PackOptions) {
  const out = path.join(await tempDir(), 'context.zip');
  const archive = await packContext(await listContext(dir, memoryOutput()), out, options);
  return { archive, bytes: await readFile(out) };
}

const text = (n: number) => Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(Math.ceil(n / 44)).slice(0, n));

async function sampleContext(): Promise<string> {
  const dir = await tempDir();
  await mkdir(path.join(dir, 'src/empty'), { recursive: true });
  await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
  await writeFile(path.join(dir, 'run.sh'), '#!/bin/sh\necho hello from a script that is long enough to deflate\n');
  await chmod(path.join(dir, 'run.sh'), 0o755);
  await writeFile(path.join(dir, 'src/app.txt'), text(20_000));
  await writeFile(path.join(dir, 'src/random.bin'), randomBytes(20_000));
  await writeFile(path.join(dir, 'src/data.gz'), gzipSync(text(20_000)));
  await writeFile(path.join(dir, 'src/empty.txt'), '');
  await writeFile(path.join(dir, 'big-text.log'), text(300_000));
  await writeFile(path.join(dir, 'big-random.bin'), randomBytes(300_000));
  await symlink('src/app.txt', path.join(dir, 'link'));
  return dir;
}

describe('packContext', () => {
  it('keeps unix modes, symlinks and empty directories through a real unzip', async () => {
    const dir = await sampleContext();
    const { archive } = await pack(dir);
    const dest = await tempDir();
    execFileSync('unzip', ['-q', archive.file, '-d', dest]);
    expect((await stat(path.join(dest, 'run.sh'))).mode & 0o7777).toBe(0o755);
    expect((await stat(path.join(dest, 'src/app.txt'))).mode & 0o7777).toBe(0o644);
    expect((await lstat(path.join(dest, 'link'))).isSymbolicLink()).toBe(true);
    expect(await readlink(path.join(dest, 'link'))).toBe('src/app.txt');
    expect((await stat(path.join(dest, 'src/empty'))).isDirectory()).toBe(true);
    for (const f of ['src/app.txt', 'src/random.bin', 'big-text.log', 'big-random.bin']) {
      expect((await readFile(path.join(dest, f))).equals(await readFile(path.join(dir, f)))).toBe(true);
    }
    expect(archive.fileCount).toBe(9);
    expect(archive.entryCount).toBe(11);
  });

  it.each<[string, PackOptions]>([
    ['whole-file path', {}],
    ['streaming path', { streamThreshold: 1000 }],
    ['forced ZIP64 records', { forceZip64: true, streamThreshold: 1000 }],
  ])('writes a strictly valid archive (%s): unix attributes, fixed time, no extra fields unless ZIP64', async (_name, options) => {
    const dir = await sampleContext();
    const { archive } = await pack(dir, options);
    const entries = await readZip(archive.file);
    expect(entries.map((e) => e.name)).toEqual([
      'Dockerfile', 'big-random.bin', 'big-text.log', 'link', 'run.sh',
      'src/', 'src/app.txt', 'src/data.gz', 'src/empty/', 'src/empty.txt', 'src/random.bin',
    ]);
    const byName = new Map(entries.map((e) => [e.name, e]));
    for (const e of entries) {
      expect(e.madeBy).toBe(3);
      expect(e.lastModDate).toBe(0x21); // 1980-01-01
      expect(e.lastModTime).toBe(0);
      expect(e.extraFields).toBe(options.forceZip64 ? 1 : 0);
    }
    expect(byName.get('run.sh')!.mode).toBe(0o100755);
    expect(byName.get('src/')!.mode & 0o170000).toBe(0o040000);
    expect(byName.get('link')!.mode).toBe(0o120777);
    expect(byName.get('link')!.data.toString()).toBe('src/app.txt');
    // deflate where it pays, store already-compressed and incompressible data
    expect(byName.get('src/app.txt')!.method).toBe(8);
    expect(byName.get('big-text.log')!.method).toBe(8);
    expect(byName.get('src/data.gz')!.method).toBe(0);
    expect(byName.get('src/random.bin')!.method).toBe(0);
    expect(byName.get('big-random.bin')!.method).toBe(0);
    for (const f of ['src/app.txt', 'src/data.gz', 'big-text.log', 'big-random.bin', 'src/empty.txt']) {
      expect(byName.get(f)!.data.equals(await readFile(path.join(dir, f)))).toBe(true);
    }
    execFileSync('unzip', ['-tq', archive.file]);
  });

  it.each<[string, PackOptions]>([
    ['whole-file path', {}],
    ['streaming path', { streamThreshold: 1000 }],
  ])('decides store or deflate from the first 4 KiB without deflating random data whole (%s)', async (_name, options) => {
    const dir = await tempDir();
    const block = randomBytes(1024);
    await writeFile(path.join(dir, 'random.dat'), randomBytes(50_000));
    // As random as it gets byte by byte, but it repeats: the trial on the first 4 KiB finds that out.
    await writeFile(path.join(dir, 'repeats.dat'), Buffer.concat(Array.from({ length: 50 }, () => block)));
    await writeFile(path.join(dir, 'text-then-random.dat'), Buffer.concat([text(8192), randomBytes(50_000)]));
    const { archive } = await pack(dir, options);
    const byName = new Map((await readZip(archive.file)).map((e) => [e.name, e]));
    expect(byName.get('random.dat')!.method).toBe(0);
    expect(byName.get('repeats.dat')!.method).toBe(8);
    expect(byName.get('text-then-random.dat')!.method).toBe(8);
    for (const f of ['random.dat', 'repeats.dat', 'text-then-random.dat']) expect(byName.get(f)!.data.equals(await readFile(path.join(dir, f)))).toBe(true);
  });

  it('is deterministic: same files give the same bytes, whatever the mtimes; sha256 is the file hash', async () => {
    const dir = await sampleContext();
    const first = await pack(dir);
    const again = await pack(dir);
    const future = new Date('2031-05-06T07:08:09Z');
    for (const f of ['Dockerfile', 'src/app.txt', 'big-text.log', 'src', 'src/empty']) await utimes(path.join(dir, f), future, future);
    const touched = await pack(dir);
    expect(again.bytes.equals(first.bytes)).toBe(true);
    expect(touched.bytes.equals(first.bytes)).toBe(true);
    expect(first.archive.sha256).toBe(createHash('sha256').update(first.bytes).digest('hex'));
    expect(touched.archive.sha256).toBe(first.archive.sha256);
    expect(first.archive.size).toBe(first.bytes.length);

    await appendFile(path.join(dir, 'src/app.txt'), 'one more line\n');
    expect((await pack(dir)).archive.sha256).not.toBe(first.archive.sha256);
  });

  it('writes the same bytes with worker threads as on one thread', async () => {
    const dir = await sampleContext();
    // enough files of mixed sizes for many batches on several workers, and files past the stream threshold
    for (let i = 0; i < 300; i++) {
      const size = (i * 7919) % 90_000;
      await writeFile(path.join(dir, 'src', `f${i}.${i % 3 === 0 ? 'bin' : 'txt'}`), i % 3 === 0 ? randomBytes(size) : text(size));
    }
    const serial = await pack(dir, { workers: 0, streamThreshold: 80_000 });
    const parallel = await pack(dir, { workers: 3, streamThreshold: 80_000 });
    expect(parallel.archive.entryCount).toBe(311);
    expect(parallel.bytes.equals(serial.bytes)).toBe(true);
    expect(parallel.archive.digest).toBe(serial.archive.digest);
    execFileSync('unzip', ['-tq', parallel.archive.file]);
  });

  it('packs a context under 4 MiB on this thread, and a larger one on worker threads', async () => {
    const dir = await sampleContext();
    const small = await listContext(dir, memoryOutput());
    expect(workersFor(small)).toBe(0);
    await writeFile(path.join(dir, 'large.bin'), Buffer.alloc(4 * 1024 * 1024));
    expect(workersFor(await listContext(dir, memoryOutput()))).toBeUndefined(); // the pool's default: one fewer than cores
  });

  it('names the content before packing: hashContext gives the digest packing yields, and any change moves it', async () => {
    const dir = await sampleContext();
    const entries = await listContext(dir, memoryOutput());
    const pool = new FilePool(2);
    try {
      const first = await hashContext(entries, pool);
      const { archive } = await pack(dir);
      expect(archive.digest).toBe(first.digest);
      await chmod(path.join(dir, 'run.sh'), 0o700);
      const modeChanged = await hashContext(await listContext(dir, memoryOutput()), pool);
      expect(modeChanged.digest).not.toBe(first.digest);
      await writeFile(path.join(dir, 'src/app.txt'), text(19_999) + 'X'); // same size, other content
      const contentChanged = await hashContext(await listContext(dir, memoryOutput()), pool);
      expect(new Set([first.digest, modeChanged.digest, contentChanged.digest]).size).toBe(3);
    } finally {
      await pool.close();
    }
  });

  it('fails as changed when a file differs from what hashContext saw, even at the same size', async () => {
    const dir = await sampleContext();
    const entries = await listContext(dir, memoryOutput());
    const pool = new FilePool(1);
    try {
      const { fileHashes } = await hashContext(entries, pool);
      await writeFile(path.join(dir, 'big-text.log'), text(299_999) + 'X');
      const out = path.join(await tempDir(), 'context.zip');
      await expect(packContext(entries, out, { pool, expected: fileHashes })).rejects.toThrow(/big-text\.log changed while/);
      await expect(packContext(entries, out, { pool, expected: fileHashes, streamThreshold: 1000 })).rejects.toThrow(/big-text\.log changed while/);
      expect(existsSync(out)).toBe(false);
    } finally {
      await pool.close();
    }
  });

  it('fails with ContextError and leaves no archive when a file changes after listing', async () => {
    const dir = await sampleContext();
    const entries = await listContext(dir, memoryOutput());
    const out = path.join(await tempDir(), 'context.zip');
    await appendFile(path.join(dir, 'big-text.log'), 'grown');
    await expect(packContext(entries, out, { streamThreshold: 1000 })).rejects.toThrow(/big-text\.log changed while the build context was being packed/);
    expect(existsSync(out)).toBe(false);
  });

  it('does not follow a file that became a symlink after listing', async () => {
    const dir = await sampleContext();
    const entries = await listContext(dir, memoryOutput());
    // same size as the listed file, so only O_NOFOLLOW can notice
    const outside = path.join(await tempDir(), 'secret.txt');
    await writeFile(outside, Buffer.alloc(20_000, 's'));
    await unlink(path.join(dir, 'src/app.txt'));
    await symlink(outside, path.join(dir, 'src/app.txt'));
    const err = await packContext(entries, path.join(await tempDir(), 'c.zip')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ContextError);
    expect((err as Error).message).toMatch(/src\/app\.txt changed while/);
  });

  it('writes a valid ZIP64 archive for 70,000 files', async () => {
    const dir = await tempDir(roomyTmpfs());
    const perDir = 1000;
    for (let d = 0; d < 70; d++) {
      const sub = path.join(dir, `d${String(d).padStart(2, '0')}`);
      mkdirSync(sub);
      // sync: 70,000 async writes are several times slower
      for (let i = 0; i < perDir; i++) writeFileSync(path.join(sub, `f${String(i).padStart(4, '0')}.txt`), `${d}/${i}\n`);
    }
    const { archive, bytes } = await pack(dir);
    expect(archive.fileCount).toBe(70_000);
    expect(archive.entryCount).toBe(70_070);

    // The classic end record says "see ZIP64" (0xffff) and the ZIP64 locator and record carry the real count.
    const eocd = bytes.subarray(bytes.length - 22);
    expect(eocd.readUInt32LE(0)).toBe(0x06054b50);
    expect(eocd.readUInt16LE(10)).toBe(0xffff);
    const locator = bytes.subarray(bytes.length - 42, bytes.length - 22);
    expect(locator.readUInt32LE(0)).toBe(0x07064b50);
    const record = bytes.subarray(Number(locator.readBigUInt64LE(8)));
    expect(record.readUInt32LE(0)).toBe(0x06064b50);
    expect(record.readBigUInt64LE(32)).toBe(70_070n);

    const entries = await readZip(archive.file, false);
    expect(entries).toHaveLength(70_070);
    expect(entries.at(-1)!.name).toBe('d69/f0999.txt');
    const listing = execFileSync('zipinfo', ['-1', archive.file], { maxBuffer: 64 * 1024 * 1024 }).toString().trim().split('\n');
    expect(listing).toHaveLength(70_070);
    expect(execFileSync('unzip', ['-tq', archive.file]).toString()).toMatch(/No errors detected/);
  }, 300_000); // beside the load test, it may first wait out the load test's builds (vitest.config.ts)
});

describe('FilePool', () => {
  it('runs the batches its started workers have no room for on this thread, with the same results', async () => {
    const dir = realpathSync(await tempDir());
    const jobs: FileJob[] = [];
    for (let i = 0; i < 8; i++) {
      const content = i % 2 ? randomBytes(10_000 + i) : text(10_000 + i);
      await writeFile(path.join(dir, `f${i}`), content);
      jobs.push({ absPath: path.join(dir, `f${i}`), size: content.length, level: 6, hashOnly: false });
    }
    const here = new FilePool(0);
    const expected = here.run(jobs);
    const opened = vi.spyOn(fs, 'openSync');
    const pool = new FilePool(1);
    try {
      // Until its worker has started, this thread runs every batch: wait for a batch it did not open a file of.
      for (let seen = -1; seen !== opened.mock.calls.length; await new Promise((r) => setTimeout(r, 10))) {
        seen = opened.mock.calls.length;
        await pool.run(jobs);
      }
      const before = opened.mock.calls.length;
      const batches = await Promise.all(Array.from({ length: 8 }, () => pool.run(jobs)));
      const openedHere = opened.mock.calls.length - before;
      expect(openedHere).toBeGreaterThan(0);
      expect(openedHere).toBeLessThan(8 * jobs.length);
      for (const batch of batches) {
        expect(batch.done).toEqual((await expected).done);
        expect(batch.bodies.equals((await expected).bodies)).toBe(true);
      }
    } finally {
      opened.mockRestore();
      await pool.close();
    }
  });
});

describe('prepareInOrder', () => {
  it('batches up to 1 MiB, shrinking near the end to the bytes left over twice the threads (64 KiB at least)', async () => {
    const dir = await tempDir();
    for (let i = 0; i < 60; i++) await writeFile(path.join(dir, `f${String(i).padStart(2, '0')}`), text(100_000));
    const entries = await listContext(dir, memoryOutput());
    const here = new FilePool(0);
    const batches: number[] = [];
    // A pool of one worker and this thread, as far as batching goes; the batches run here.
    const pool = {
      size: 1,
      run: (jobs: FileJob[]) => (batches.push(jobs.reduce((n, j) => n + j.size, 0)), here.run(jobs)),
      recycle: (bodies: Buffer) => here.recycle(bodies),
    } as unknown as FilePool;
    const paths: string[] = [];
    for await (const batch of prepareInOrder(entries, { level: 6, streamThreshold: 2 * 1024 * 1024 }, pool)) {
      for (const item of batch) {
        paths.push(item.entry.path);
        if ('release' in item) item.release?.();
      }
    }
    expect(paths).toEqual(entries.map((e) => e.path));
    expect(batches.reduce((a, b) => a + b, 0)).toBe(6_000_000);
    expect(batches[0]).toBe(1_100_000); // 1 MiB reached with the 11th file
    let left = 6_000_000;
    for (const bytes of batches) {
      // files of 100,000 bytes are added until the batch reaches its bound
      const bound = Math.min(1024 * 1024, Math.max(64 * 1024, left / 4));
      expect(bytes).toBe(Math.min(left, Math.ceil(bound / 100_000) * 100_000));
      left -= bytes;
    }
    expect(batches.at(-1)).toBe(100_000);
  });
});

describe('looksIncompressible', () => {
  /** The rule without its shortcut: under 7.5 bits of entropy per byte deflated, else the trial deflate decides. */
  function byTrial(sample: Buffer): boolean {
    const counts = new Uint32Array(256);
    for (const byte of sample.subarray(0, 4096)) counts[byte]!++;
    let bits = 0;
    for (const c of counts) if (c > 0) bits -= c * Math.log2(c / 4096);
    return bits >= 7.5 * 4096 && zlib.deflateRawSync(sample.subarray(0, 4096), { level: 6, windowBits: 12 }).length >= 4096 * 0.98;
  }

  it('stores random data without the trial deflate, and decides as the trial does on both sides of its bound', () => {
    const rand = prng(21); // seeded: the samples near the bound are the same on every run
    const random = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(rand() * 256)));
    let trials = 0;
    const counting = { ...zlib, deflateRawSync: (b: Buffer, o: zlib.ZlibOptions) => (trials++, zlib.deflateRawSync(b, o)) } as typeof zlib;
    const seen = new Int32Array(16384);
    for (let i = 0; i < 200; i++) expect(looksIncompressible(random(4096), 50_000, 6, counting, seen)).toBe(true);
    expect(trials).toBe(0);

    // Random data with runs of 3 to 40 bytes copied into its second half: a few leave it incompressible,
    // more make deflate save 2%, so samples fall on both sides.
    const counted = { shortcut: 0, trialStored: 0, deflated: 0 };
    for (let i = 0; i < 400; i++) {
      const sample = random(4096);
      for (let run = 0; run <= i % 6; run++) {
        const from = Math.floor(rand() * 2000);
        sample.copy(sample, 2048 + Math.floor(rand() * 1900), from, from + 3 + Math.floor(rand() * (3 + (i % 97))));
      }
      const before = trials;
      const stored = looksIncompressible(sample, 50_000, 6, counting, seen);
      expect(stored).toBe(byTrial(sample));
      if (!stored) counted.deflated++;
      else if (trials === before) counted.shortcut++;
      else counted.trialStored++;
    }
    expect(counted.shortcut).toBeGreaterThan(10);
    expect(counted.trialStored).toBeGreaterThan(10);
    expect(counted.deflated).toBeGreaterThan(10);
  });
});

describe('deflateInto', () => {
  it('gives the bytes deflateRawSync gives, or -1 where deflate does not shrink the data', () => {
    const out = Buffer.alloc(300_000, 0xee);
    const repeated = Buffer.concat(Array.from({ length: 40 }, () => randomBytes(100)));
    // sizes around the window sizes picked by length, random data, and data deflate just fails to shrink
    for (const content of [text(1), text(100), text(511), text(512), text(513), text(32_768), text(32_769), text(250_000), repeated, randomBytes(3000), randomBytes(1)]) {
      const windowBits = Math.min(15, Math.max(9, Math.ceil(Math.log2(content.length))));
      const expected = zlib.deflateRawSync(content, { level: 6, windowBits });
      const length = deflateInto(content, 6, out, zlib);
      if (expected.length < content.length) expect(out.subarray(0, length).equals(expected)).toBe(true);
      else expect(length).toBe(-1);
    }
    expect(deflateInto(text(5000), 6, out, zlib)).toBeGreaterThan(0);
    expect(deflateInto(randomBytes(5000), 6, out, zlib)).toBe(-1);
  });

  it('falls back to deflateRawSync, with the same result, on a Node whose zlib stream lacks the internals it uses', () => {
    class Bare extends zlib.DeflateRaw {
      constructor(options: zlib.ZlibOptions) {
        super(options);
        Object.defineProperty(this, '_writeState', { value: undefined });
      }
    }
    const bare = { ...zlib, DeflateRaw: Bare } as unknown as typeof zlib;
    const out = Buffer.alloc(10_000);
    const content = text(5000);
    const expected = zlib.deflateRawSync(content, { level: 6, windowBits: 13 });
    expect(out.subarray(0, deflateInto(content, 6, out, bare)).equals(expected)).toBe(true);
    expect(deflateInto(randomBytes(5000), 6, out, bare)).toBe(-1);
  });
});
