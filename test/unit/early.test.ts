import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EarlyPacking } from '../../src/context/early';
import { type ContextEntry, listContext } from '../../src/context/listing';
import { packContext, packContextTo, type ArchiveTarget } from '../../src/context/zip';
import { memoryOutput } from '../helpers/output';

let dir: string;
let entries: ContextEntry[];
let expected: Buffer;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'early-'));
  const context = path.join(dir, 'context');
  // 40 files of 256 KiB of random data: an archive of about 10 MiB, written in 1 MiB steps.
  await mkdir(context);
  for (let i = 0; i < 40; i++) await writeFile(path.join(context, `f${i}.bin`), randomBytes(256 * 1024));
  entries = await listContext(context, memoryOutput());
  await packContext(entries, path.join(dir, 'direct.zip'), { workers: 0 });
  expected = await readFile(path.join(dir, 'direct.zip'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A target collecting what it is given (copied: the packer reuses its buffers). */
function collector(): ArchiveTarget & { bytes: () => Buffer } {
  const parts: Buffer[] = [];
  return { write: async (buffers) => void parts.push(Buffer.concat(buffers)), bytes: () => Buffer.concat(parts) };
}

/** Counts the bytes a packer writes; `reached` resolves once `limit` bytes went through. */
function counter(limit: number) {
  let crossed!: () => void;
  const c = {
    bytes: 0,
    reached: new Promise<void>((resolve) => (crossed = resolve)),
    through: (target: ArchiveTarget): ArchiveTarget => ({
      write: (buffers) => {
        c.bytes += buffers.reduce((n, b) => n + b.length, 0);
        if (c.bytes >= limit) crossed();
        return target.write(buffers);
      },
    }),
  };
  return c;
}

/** With workers: 0 the packer runs in this thread's promise jobs: a turn of the event loop gives it every chance to go on. */
const turn = () => new Promise((resolve) => setImmediate(resolve));

describe('EarlyPacking', () => {
  it('packs ahead up to its limit, then hands over the same bytes as packing straight into the target', async () => {
    const written = counter(3 * 1024 * 1024);
    const early = new EarlyPacking((target) => packContextTo(entries, written.through(target), { workers: 0 }), 3 * 1024 * 1024);
    await written.reached;
    await turn();
    // It stopped after about 3 MiB (the step that crossed the limit included), far from the whole archive.
    expect(written.bytes).toBeLessThan(5 * 1024 * 1024);
    const target = collector();
    const archive = await early.write(target);
    expect(archive.size).toBe(expected.length);
    expect(target.bytes().equals(expected)).toBe(true);
  });

  it('stops packing when cancelled, without writing anywhere', async () => {
    const written = counter(1024 * 1024);
    let failure: unknown;
    const early = new EarlyPacking((target) => {
      const packing = packContextTo(entries, written.through(target), { workers: 0 });
      packing.catch((e: unknown) => (failure = e));
      return packing;
    }, 1024 * 1024);
    await written.reached;
    const before = written.bytes;
    await early.cancel();
    expect((failure as Error).message).toBe('The archive is not needed.');
    expect(written.bytes).toBe(before);
  });
});
