/**
 * The benchmark's deterministic build contexts: the same bytes on every run and machine (seeded PRNG).
 *
 * - small: 1 MiB in 50 files (text and a few binaries).
 * - mixed: 40 MiB in 2,000 files, half of them random bytes, sizes log-normal around 20 KiB.
 * - app: about 70 MB in about 3,000 files, 55% of the bytes random (binaries, images, tarballs).
 * - monorepo: about 400 MB in about 40,000 files.
 * - huge: 2 GiB in 200,000 files, mostly small text, with 40 large binaries.
 * - incompressible: four random files of 256 MiB.
 */
import { createCipheriv } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { prng } from '../test/helpers/prng';

export type ContextName = 'small' | 'mixed' | 'app' | 'monorepo' | 'huge' | 'incompressible';

/** Bump when a generator changes: bench/pack.ts keeps generated contexts under a name with this version. */
export const CONTEXTS_VERSION = 2;

export interface Generated {
  dir: string;
  bytes: number;
  files: number;
}

const KB = 1024;
const MB = 1024 * KB;

/** Source-like text: Zipf-ish words, indentation and punctuation; deflates about 3:1 like real code. */
function textGenerator(rand: () => number): (bytes: number) => Buffer {
  const letters = 'abcdefghijklmnopqrstuvwxyz_';
  const words = Array.from({ length: 4000 }, () =>
    Array.from({ length: 2 + Math.floor(rand() * 9) }, () => letters[Math.floor(rand() * letters.length)]).join(''),
  );
  const seps = [' ', ' ', ' ', '.', '(', ') ', ', ', ' = ', ';\n', '\n  ', '\n    ', ' {\n', '}\n'];
  return (bytes) => {
    const parts: string[] = [];
    let n = 0;
    while (n < bytes) {
      const w = `${words[Math.floor(words.length * rand() ** 3)]}${seps[Math.floor(rand() * seps.length)]}`;
      parts.push(w);
      n += w.length;
    }
    return Buffer.from(parts.join('').slice(0, bytes));
  };
}

function randomBytes(rand: () => number, n: number): Buffer {
  const words = new Uint32Array(Math.ceil(n / 4));
  for (let i = 0; i < words.length; i++) words[i] = Math.floor(rand() * 4294967296);
  return Buffer.from(words.buffer, 0, n);
}

interface Mix {
  /** Source files of 2 KB to 2 + `sourceSpanKB` KB. */
  sources: number;
  sourceSpanKB: number;
  /** Config files of 50–600 bytes. */
  configs: number;
  /** Random binaries of 64 KB–1 MB. */
  blobs: number;
  /** PNG-named random images of 80 KB (stored by name). */
  images: number;
  /** gzip tarballs of 900 KB of text (incompressible, stored by name). */
  tarballs: number;
  /** 4 MB text logs (streamed by the packer). */
  logs: number;
  /** 8 MB random files (streamed). */
  bigBlobs: number;
}

const MIXES: Record<'app' | 'monorepo', Mix> = {
  app: { sources: 2_400, sourceSpanKB: 20, configs: 480, blobs: 36, images: 60, tarballs: 20, logs: 1, bigBlobs: 1 },
  monorepo: { sources: 28_000, sourceSpanKB: 10, configs: 11_330, blobs: 160, images: 400, tarballs: 100, logs: 6, bigBlobs: 4 },
};

/** Writes the named context into `dir` (which must not exist yet). */
export function generateContext(name: ContextName, dir: string): Generated {
  let bytes = 0;
  let files = 0;
  const put = (rel: string, data: Buffer): void => {
    const file = path.join(dir, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, data);
    bytes += data.length;
    files++;
  };
  if (name === 'app' || name === 'monorepo') generateMix(MIXES[name], put);
  else GENERATORS[name](put);
  return { dir, bytes, files };
}

type Put = (rel: string, data: Buffer) => void;

function generateMix(mix: Mix, put: Put): void {
  const rand = prng(42);
  const text = textGenerator(rand);
  put('Dockerfile', Buffer.from('FROM alpine\nCOPY . /app\n'));
  for (let i = 0; i < mix.sources; i++) put(`src/m${i % 60}/file${i}.ts`, text(2 * KB + Math.floor(rand() * mix.sourceSpanKB * KB)));
  for (let i = 0; i < mix.configs; i++) put(`config/d${i % 40}/f${i}.json`, text(50 + Math.floor(rand() * 550)));
  for (let i = 0; i < mix.blobs; i++) put(`bin/blob${i}.bin`, randomBytes(rand, 64 * KB + Math.floor(rand() * 960 * KB)));
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  for (let i = 0; i < mix.images; i++) put(`assets/img${i}.png`, Buffer.concat([png, randomBytes(rand, 80 * KB)]));
  for (let i = 0; i < mix.tarballs; i++) put(`vendor/pkg${i}.tar.gz`, gzipSync(text(900 * KB), { level: 9 }));
  for (let i = 0; i < mix.logs; i++) put(`logs/big${i}.log`, text(4 * MB));
  for (let i = 0; i < mix.bigBlobs; i++) put(`data/big${i}.dat`, randomBytes(rand, 8 * MB));
}

/**
 * Random bytes at memory speed for the large contexts: AES-128-CTR over zeros, keyed by `seed` (the PRNG above
 * makes about 100 MB/s, too slow for gigabytes).
 */
function fastRandom(seed: number): (n: number) => Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return (n) => cipher.update(Buffer.alloc(n));
}

/** A size drawn log-normally around `median` (sigma 1 in log space), within [min, max]. */
function logNormal(rand: () => number, median: number, min: number, max: number): number {
  const gauss = Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  return Math.max(min, Math.min(max, Math.round(median * Math.exp(gauss))));
}

/**
 * Text files cut from one 16 MiB pool of source-like text at random offsets: as compressible as the text
 * generator's (each file is deflated on its own), and fast enough for a gigabyte.
 */
function textPool(rand: () => number): (n: number) => Buffer {
  const pool = textGenerator(rand)(16 * MB);
  return (n) => {
    const at = Math.floor(rand() * (pool.length - n));
    return pool.subarray(at, at + n);
  };
}

const GENERATORS: Record<Exclude<ContextName, 'app' | 'monorepo'>, (put: Put) => void> = {
  small: (put) => {
    const rand = prng(7);
    const text = textPool(rand);
    const random = fastRandom(7);
    put('Dockerfile', Buffer.from('FROM alpine\nCOPY . /app\n'));
    // 45 text files and 4 binaries: 1 MiB in all.
    for (let i = 0; i < 45; i++) put(`src/file${i}.ts`, text(16 * KB));
    for (let i = 0; i < 4; i++) put(`bin/blob${i}.bin`, random(MB / 4 - (45 * 16 * KB) / 4 - 6));
  },
  mixed: (put) => {
    const rand = prng(11);
    const text = textPool(rand);
    const random = fastRandom(11);
    put('Dockerfile', Buffer.from('FROM alpine\nCOPY . /app\n'));
    // Sizes log-normal around 20 KiB, scaled so the 1,999 files hold 40 MiB; odd files random (by a neutral name).
    const sizes = Array.from({ length: 1_999 }, () => logNormal(rand, 20 * KB, 64, 4 * MB));
    const scale = (40 * MB) / sizes.reduce((a, b) => a + b, 0);
    sizes.forEach((size, i) => {
      const n = Math.max(1, Math.round(size * scale));
      put(i % 2 ? `data/d${i % 50}/f${i}.dat` : `src/m${i % 50}/f${i}.ts`, i % 2 ? random(n) : text(n));
    });
  },
  huge: (put) => {
    const rand = prng(13);
    const text = textPool(rand);
    const random = fastRandom(13);
    put('Dockerfile', Buffer.from('FROM alpine\nCOPY . /app\n'));
    // 199,959 text files log-normal around 4 KiB (about 1.25 GiB) and 40 binaries of 19 MiB.
    for (let i = 0; i < 199_959; i++) put(`src/p${i % 400}/m${i % 23}/f${i}.ts`, text(logNormal(rand, 4 * KB, 16, 1 * MB)));
    for (let i = 0; i < 40; i++) put(`bin/tool${i}.bin`, random(19 * MB));
  },
  incompressible: (put) => {
    const random = fastRandom(17);
    put('Dockerfile', Buffer.from('FROM alpine\nCOPY . /data\n'));
    for (let i = 0; i < 4; i++) put(`data/disk${i}.img`, random(256 * MB));
  },
};
