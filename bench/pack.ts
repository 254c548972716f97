/**
 * Packer benchmark: `npx tsx bench/pack.ts` (or `npm run bench`).
 *
 * Generates a ~70 MB context (text, many small files, random data, .gz/.png files, two big logs), then
 * packs it with Info-ZIP `zip -r -6 -X -q` (the reference), our packContext and jszip (DEFLATE level 6,
 * platform UNIX), each in its own process under /usr/bin/time -v for peak RSS. Then packs a ~300 MB
 * context to show that our peak RSS does not grow with the context. Prints markdown tables.
 *
 * Env: BENCH_RUNS (default 3; time is the median), BENCH_DIR (default the OS temp dir),
 * BENCH_LARGE_SCALE (default 4.3, times the 70 MB mix; 0 skips the memory check).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

const MB = 1024 * 1024;
const runs = Number(process.env.BENCH_RUNS ?? 3);
const largeScale = Number(process.env.BENCH_LARGE_SCALE ?? 4.3);
const repo = path.resolve(__dirname, '..');
const child = path.join(__dirname, 'child.ts');

/** Seeded PRNG (mulberry32): the same context on every run and machine. */
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
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i += 4) b.writeUInt32LE(Math.floor(rand() * 4294967296), Math.min(i, n - 4));
  return b;
}

/**
 * Writes the mix: `scale` 1 is about 70 MB in about 11,600 files; `extraMB` adds that much in about one
 * large file per MB (4 MB logs, 1 MB random blobs, 512 KB text files). Returns the bytes written.
 */
function generateContext(dir: string, scale: number, extraMB = 0): number {
  const rand = prng(42);
  const text = textGenerator(rand);
  let total = 0;
  const put = (rel: string, data: Buffer): void => {
    mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    writeFileSync(path.join(dir, rel), data);
    total += data.length;
  };
  const count = (n: number) => Math.round(n * scale);
  put('Dockerfile', Buffer.from('FROM alpine\nCOPY . /app\n'));
  for (let i = 0; i < count(3500); i++) put(`src/m${i % 40}/file${i}.ts`, text(2048 + Math.floor(rand() * 14 * 1024)));
  for (let i = 0; i < count(8000); i++) put(`small/d${i % 80}/f${i}.json`, text(50 + Math.floor(rand() * 550)));
  for (let i = 0; i < count(2); i++) put(`logs/big${i}.log`, text(4 * MB));
  for (let i = 0; i < count(12); i++) put(`bin/blob${i}.bin`, randomBytes(rand, MB));
  for (let i = 0; i < count(1); i++) put(`bin/big${i}.dat`, randomBytes(rand, 4 * MB));
  const pngSignature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  for (let i = 0; i < count(40); i++) put(`assets/img${i}.png`, Buffer.concat([pngSignature, randomBytes(rand, 80 * 1024)]));
  for (let i = 0; i < count(20); i++) put(`vendor/pkg${i}.tar.gz`, gzipSync(text(900 * 1024), { level: 9 }));
  for (let mb = 0, i = 0; mb < extraMB; i++) {
    if (i % 3 === 0) put(`extra/log${i}.log`, text(4 * MB));
    else if (i % 3 === 1) put(`extra/blob${i}.bin`, randomBytes(rand, MB));
    else put(`extra/page${i}.html`, text(MB / 2));
    mb += [4, 1, 0.5][i % 3]!;
  }
  return total;
}

interface Run {
  seconds: number;
  rssMB: number;
  sizeMB: number;
}

function maxRss(stderr: string): number {
  const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
  if (!m) throw new Error(`no RSS in /usr/bin/time output:\n${stderr}`);
  return Number(m[1]) / 1024;
}

function timed(cmd: string[], cwd: string): { seconds: number; rssMB: number; stdout: string } {
  const start = performance.now();
  const r = spawnSync('/usr/bin/time', ['-v', ...cmd], { cwd, encoding: 'utf8', maxBuffer: 64 * MB });
  const seconds = (performance.now() - start) / 1000;
  if (r.status !== 0) throw new Error(`${cmd.join(' ')} failed (${r.status}):\n${r.stderr}`);
  return { seconds, rssMB: maxRss(r.stderr), stdout: r.stdout };
}

type Tool = 'zip' | 'ours' | 'jszip' | 'baseline';

function runTool(tool: Tool, ctx: string, out: string): Run {
  rmSync(out, { force: true });
  if (tool === 'zip') {
    const r = timed(['zip', '-r', '-6', '-X', '-q', out, '.'], ctx);
    return { seconds: r.seconds, rssMB: r.rssMB, sizeMB: statSync(out).size / MB };
  }
  // Node packers: time measured inside the child (without start-up), RSS of the whole process.
  const r = timed([process.execPath, '--import', 'tsx', child, tool, ctx, out], repo);
  const { ms } = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { ms: number };
  return { seconds: ms / 1000, rssMB: r.rssMB, sizeMB: tool === 'baseline' ? 0 : statSync(out).size / MB };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f = (x: number, d = 2) => x.toFixed(d);

function bench(ctx: string, tools: Tool[], n: number, outDir: string): Map<Tool, Run> {
  const results = new Map<Tool, Run[]>(tools.map((t) => [t, []]));
  for (let i = 0; i < n; i++) {
    // rotate the order so no tool always runs first
    for (const tool of tools.map((_, j) => tools[(i + j) % tools.length]!)) {
      const r = runTool(tool, ctx, path.join(outDir, `${tool}.zip`));
      results.get(tool)!.push(r);
      console.error(`  ${tool} run ${i + 1}: ${f(r.seconds)} s, ${f(r.rssMB, 0)} MB RSS`);
    }
  }
  return new Map(
    [...results].map(([t, rs]) => [t, { seconds: median(rs.map((r) => r.seconds)), rssMB: Math.max(...rs.map((r) => r.rssMB)), sizeMB: rs[0]!.sizeMB }]),
  );
}

function main(): void {
  const root = mkdtempSync(path.join(process.env.BENCH_DIR ?? tmpdir(), 'pack-bench-'));
  try {
    const ctx = path.join(root, 'ctx');
    const outDir = path.join(root, 'out');
    mkdirSync(outDir);
    console.error(`generating the context in ${ctx} …`);
    const bytes = generateContext(ctx, 1);
    const files = Number(spawnSync('sh', ['-c', 'find . -type f | wc -l'], { cwd: ctx, encoding: 'utf8' }).stdout.trim());
    const r = bench(ctx, ['zip', 'ours', 'jszip', 'baseline'], runs, outDir);
    const check = spawnSync('unzip', ['-tq', path.join(outDir, 'ours.zip')], { encoding: 'utf8' });
    if (check.status !== 0) throw new Error(`unzip -t rejected our archive:\n${check.stdout}${check.stderr}`);

    const zip = r.get('zip')!;
    console.log(`Context: ${f(bytes / MB, 1)} MB in ${files} files. Node ${process.version}, ${runs} runs (time = median, RSS = max).\n`);
    console.log('| packer | time (s) | time vs zip | archive (MB) | size vs zip | peak RSS (MB) |');
    console.log('|---|---:|---:|---:|---:|---:|');
    const rows: [string, Tool][] = [
      ['`zip -r -6 -X -q` (Info-ZIP 3.0)', 'zip'],
      ['packContext (ours)', 'ours'],
      ['jszip 3.10 (DEFLATE 6, UNIX)', 'jszip'],
    ];
    for (const [label, tool] of rows) {
      const x = r.get(tool)!;
      console.log(`| ${label} | ${f(x.seconds)} | ${f(x.seconds / zip.seconds)}× | ${f(x.sizeMB, 1)} | ${f(x.sizeMB / zip.sizeMB, 3)}× | ${f(x.rssMB, 0)} |`);
    }
    console.log(`| (Node + tsx harness doing nothing) | | | | | ${f(r.get('baseline')!.rssMB, 0)} |`);

    if (largeScale > 0) {
      // More bytes in few files, then more bytes in proportionally more files: the first shows memory
      // does not follow the bytes, the second what each listed file costs (entry list, central directory).
      const large: [string, number, number][] = [
        [`the mix + ${Math.round((largeScale - 1) * 70)} MB in large files`, 1, (largeScale - 1) * 70],
        [`the mix ×${largeScale}`, largeScale, 0],
      ];
      const rowsOut = [`| the mix, ${f(bytes / MB, 0)} MB | ${files} | ${f(zip.seconds)} | ${f(r.get('ours')!.seconds)} | ${f(zip.rssMB, 0)} | ${f(r.get('ours')!.rssMB, 0)} |`];
      rmSync(ctx, { recursive: true, force: true });
      for (const [label, scale, extra] of large) {
        const dir = path.join(root, 'large');
        console.error(`generating ${label} in ${dir} …`);
        const n = generateContext(dir, scale, extra);
        const count = Number(spawnSync('sh', ['-c', 'find . -type f | wc -l'], { cwd: dir, encoding: 'utf8' }).stdout.trim());
        const b = bench(dir, ['zip', 'ours'], 1, outDir);
        rowsOut.push(`| ${label}, ${f(n / MB, 0)} MB | ${count} | ${f(b.get('zip')!.seconds)} | ${f(b.get('ours')!.seconds)} | ${f(b.get('zip')!.rssMB, 0)} | ${f(b.get('ours')!.rssMB, 0)} |`);
        rmSync(dir, { recursive: true, force: true });
      }
      console.log('\nMemory check (one run each):\n');
      console.log('| context | files | zip time (s) | ours time (s) | zip peak RSS (MB) | ours peak RSS (MB) |');
      console.log('|---|---:|---:|---:|---:|---:|');
      for (const row of rowsOut) console.log(row);
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

main();
