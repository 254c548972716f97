/**
 * Packing: every context of the matrix (bench/contexts.ts) packed by Info-ZIP `zip -r -6 -X -q` (the reference)
 * and by packContext, in alternating runs. The ratio is the median of each run's ours/zip time; ours is timed
 * inside its own process (bench/child.ts: listing to archive on disk, without Node's start-up), and peak RSS is
 * that whole process's, worker threads included. The child is bundled with esbuild first, as dist/index.js is,
 * so neither its time nor its memory includes tsx compiling TypeScript.
 *
 * The contexts are generated once into BENCH_CONTEXTS (default /tmp/codebuild-image-bench) and kept there for
 * the next run: the 2 GiB one takes about a minute to write. BENCH_PACK=small,mixed measures only those.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildSync } from 'esbuild';
import { SERIAL_BELOW } from '../src/context/zip';
import { CONTEXTS_VERSION, type ContextName, type Generated, generateContext } from './contexts';
import { fixed, median, progress } from './measure';
import type { BenchRow } from './rows';

const MB = 1024 * 1024;
const repo = path.resolve(__dirname, '..');
const MATRIX: { name: ContextName; runs: number }[] = [
  { name: 'small', runs: 5 },
  { name: 'mixed', runs: 3 },
  { name: 'app', runs: Number(process.env.BENCH_APP_RUNS ?? 5) },
  { name: 'monorepo', runs: Number(process.env.BENCH_MONOREPO_RUNS ?? 3) },
  { name: 'huge', runs: 3 },
  { name: 'incompressible', runs: 3 },
];

interface Run {
  seconds: number;
  rssMB: number;
  bytes: number;
}

function runZip(ctx: string, out: string): Run {
  rmSync(out, { force: true });
  const start = performance.now();
  const r = spawnSync('zip', ['-r', '-6', '-X', '-q', out, '.'], { cwd: ctx, encoding: 'utf8' });
  const seconds = (performance.now() - start) / 1000;
  if (r.error || r.status !== 0) throw new Error(`zip failed (is Info-ZIP installed? scripts/ensure-deps.sh installs it): ${r.error?.message ?? r.stderr}`);
  return { seconds, rssMB: 0, bytes: statSync(out).size };
}

/** `workers`: PACK_WORKERS for the child, else the packer's own choice. */
function runOurs(child: string, ctx: string, out: string, workers?: number): Run {
  rmSync(out, { force: true });
  const env = workers === undefined ? process.env : { ...process.env, PACK_WORKERS: String(workers) };
  const r = spawnSync(process.execPath, [child, ctx, out], { cwd: repo, encoding: 'utf8', env });
  if (r.status !== 0) throw new Error(`bench/child.ts failed:\n${r.stderr}`);
  const { ms, rssMB } = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { ms: number; rssMB: number };
  return { seconds: ms / 1000, rssMB, bytes: statSync(out).size };
}

/** The context, generated on the first run and kept (a marker file holds its size once it is complete). */
function cachedContext(name: ContextName): Generated {
  const dir = path.join(process.env.BENCH_CONTEXTS ?? '/tmp/codebuild-image-bench', `${name}-v${CONTEXTS_VERSION}`);
  const marker = `${dir}.json`;
  if (existsSync(marker)) return JSON.parse(readFileSync(marker, 'utf8')) as Generated;
  rmSync(dir, { recursive: true, force: true });
  progress(`generating the ${name} context into ${dir} (kept for later runs) …`);
  const generated = generateContext(name, dir);
  writeFileSync(marker, JSON.stringify(generated));
  return generated;
}

/** Paired runs, alternating which packer goes first. */
export function packRatio(name: ContextName, runs: number, root: string, child: string): { ratio: number; zip: Run[]; ours: Run[]; files: number; bytes: number } {
  const generated = cachedContext(name);
  const zip: Run[] = [];
  const ours: Run[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < runs; i++) {
    const zipRun = () => runZip(generated.dir, path.join(root, 'zip.zip'));
    const oursRun = () => runOurs(child, generated.dir, path.join(root, 'ours.zip'));
    let z: Run;
    let o: Run;
    if (i % 2 === 0) {
      z = zipRun();
      o = oursRun();
    } else {
      o = oursRun();
      z = zipRun();
    }
    zip.push(z);
    ours.push(o);
    ratios.push(o.seconds / z.seconds);
    progress(`${name} run ${i + 1}: zip ${fixed(z.seconds)} s, ours ${fixed(o.seconds)} s (${fixed(o.seconds / z.seconds)}×), ${fixed(o.rssMB, 0)} MB RSS`);
  }
  const check = spawnSync('unzip', ['-tq', path.join(root, 'ours.zip')], { encoding: 'utf8' });
  if (check.status !== 0) throw new Error(`unzip -t rejected our archive:\n${check.stdout}${check.stderr}`);
  return { ratio: median(ratios), zip, ours, files: generated.files, bytes: generated.bytes };
}

/**
 * Whether a tiny context's miss is the limit it seems: splitting the work does not help (packed with one worker
 * thread beside the main one, it takes at least as long as on one thread), and on one thread the packer is at
 * least as fast as zip (deflating at zip's level, one thread is not twice as fast; slower would be a defect).
 */
function tinyContext(child: string, dir: string, root: string, runs: number, zipS: number, oursS: number): { note: string; cannot: boolean } {
  const split = median(Array.from({ length: runs }, () => runOurs(child, dir, path.join(root, 'ours.zip'), 1).seconds));
  const ms = (s: number) => `${fixed(s * 1000, 0)} ms`;
  return {
    note: `; a tiny context: zip's whole process ${ms(zipS)}, ours ${ms(oursS)} on one thread, ${ms(split)} with a worker thread`,
    cannot: split >= oursS && oursS <= zipS,
  };
}

const sizeOf = (bytes: number): string => (bytes >= 1024 * MB ? `${fixed(bytes / 1024 / MB, 1)} GiB` : bytes >= 10 * MB ? `${fixed(bytes / MB, 0)} MiB` : `${fixed(bytes / MB, 1)} MiB`);

export async function measure(): Promise<BenchRow[]> {
  const only = process.env.BENCH_PACK?.split(',').filter(Boolean);
  const root = mkdtempSync(path.join(process.env.BENCH_DIR ?? tmpdir(), 'bench-pack-'));
  try {
    const child = path.join(root, 'child.js');
    buildSync({ entryPoints: [path.join(__dirname, 'child.ts')], outfile: child, bundle: true, platform: 'node', target: 'node20', mainFields: ['module', 'main'], logLevel: 'warning' });
    const rows: BenchRow[] = [];
    const rss: string[] = [];
    let worstRss = 0;
    for (const { name, runs } of MATRIX) {
      if (only && !only.includes(name)) continue;
      const started = performance.now();
      const r = packRatio(name, runs, root, child);
      const zipS = median(r.zip.map((x) => x.seconds));
      const oursS = median(r.ours.map((x) => x.seconds));
      const sizeRatio = r.ours[0]!.bytes / r.zip[0]!.bytes;
      const took = (performance.now() - started) / 1000;
      // A context this small is packed on one thread (zip.ts, workersFor): a worker thread would start about as
      // late as the packing ends. Measured here with one worker thread forced, so the row shows whether splitting
      // the work could have helped.
      const tiny = r.bytes < SERIAL_BELOW ? tinyContext(child, cachedContext(name).dir, root, r.zip.length, zipS, oursS) : undefined;
      rows.push({
        group: 'packing',
        metric: `pack *${name}* (${sizeOf(r.bytes)}, ${r.files.toLocaleString('en')} files): packContext (bench/child.ts) vs \`zip -r -6 -X -q\``,
        value: `${fixed(r.ratio)}× (median of ${r.zip.length} pairs; ${fixed(oursS)} s vs ${fixed(zipS)} s; archive ${fixed(sizeRatio, 3)}× zip's size; ${fixed(took, 0)} s of bench${tiny?.note ?? ''})`,
        target: tiny ? '≤ 0.5×; a tiny context: both times, and why it cannot' : '≤ 0.5×',
        met: r.ratio <= 0.5 || (tiny?.cannot ?? false),
      });
      const peak = Math.max(...r.ours.map((x) => x.rssMB));
      worstRss = Math.max(worstRss, peak);
      rss.push(`${name} ${fixed(peak, 0)}`);
    }
    rows.push({ group: 'packing', metric: 'packing, peak RSS (largest over the contexts above)', value: `${fixed(worstRss, 0)} MB (${rss.join(', ')})`, target: '≤ 256 MB', met: worstRss <= 256 });
    return rows;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
