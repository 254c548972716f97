/**
 * The benchmark's deterministic build contexts: the same bytes on every run and machine (seeded PRNG).
 *
 * - app: about 70 MB in about 3,000 files, 55% of the bytes random (binaries, images, tarballs).
 * - monorepo: about 400 MB in about 40,000 files.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

export type ContextName = 'app' | 'monorepo';

export interface Generated {
  dir: string;
  bytes: number;
  files: number;
}

const KB = 1024;
const MB = 1024 * KB;

/** Seeded PRNG (mulberry32). */
function prng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

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

const MIXES: Record<ContextName, Mix> = {
  app: { sources: 2_400, sourceSpanKB: 20, configs: 480, blobs: 36, images: 60, tarballs: 20, logs: 1, bigBlobs: 1 },
  monorepo: { sources: 28_000, sourceSpanKB: 10, configs: 11_330, blobs: 160, images: 400, tarballs: 100, logs: 6, bigBlobs: 4 },
};

/** Writes the named context into `dir` (which must not exist yet). */
export function generateContext(name: ContextName, dir: string): Generated {
  const mix = MIXES[name];
  const rand = prng(42);
  const text = textGenerator(rand);
  let bytes = 0;
  let files = 0;
  const put = (rel: string, data: Buffer): void => {
    const file = path.join(dir, rel);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, data);
    bytes += data.length;
    files++;
  };
  put('Dockerfile', Buffer.from('FROM alpine\nCOPY . /app\n'));
  for (let i = 0; i < mix.sources; i++) put(`src/m${i % 60}/file${i}.ts`, text(2 * KB + Math.floor(rand() * mix.sourceSpanKB * KB)));
  for (let i = 0; i < mix.configs; i++) put(`config/d${i % 40}/f${i}.json`, text(50 + Math.floor(rand() * 550)));
  for (let i = 0; i < mix.blobs; i++) put(`bin/blob${i}.bin`, randomBytes(rand, 64 * KB + Math.floor(rand() * 960 * KB)));
  const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  for (let i = 0; i < mix.images; i++) put(`assets/img${i}.png`, Buffer.concat([png, randomBytes(rand, 80 * KB)]));
  for (let i = 0; i < mix.tarballs; i++) put(`vendor/pkg${i}.tar.gz`, gzipSync(text(900 * KB), { level: 9 }));
  for (let i = 0; i < mix.logs; i++) put(`logs/big${i}.log`, text(4 * MB));
  for (let i = 0; i < mix.bigBlobs; i++) put(`data/big${i}.dat`, randomBytes(rand, 8 * MB));
  return { dir, bytes, files };
}
