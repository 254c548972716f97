/**
 * Packing: the *app* and *monorepo* contexts (bench/contexts.ts) packed by Info-ZIP `zip -r -6 -X -q` (the
 * reference) and by packContext, in alternating runs. The ratio is the median of each run's ours/zip time;
 * ours is timed inside its own process (bench/child.ts: listing to archive on disk, without Node's start-up),
 * and peak RSS is that whole process's, worker threads included. The child is bundled with esbuild first, as
 * dist/index.js is, so neither its time nor its memory includes tsx compiling TypeScript.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { buildSync } from 'esbuild';
import { type ContextName, generateContext } from './contexts';
import { fixed, median, progress } from './measure';
import type { BenchRow } from './rows';

const MB = 1024 * 1024;
const repo = path.resolve(__dirname, '..');
const RUNS: Record<ContextName, number> = {
  app: Number(process.env.BENCH_APP_RUNS ?? 5),
  monorepo: Number(process.env.BENCH_MONOREPO_RUNS ?? 3),
};

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

function runOurs(child: string, ctx: string, out: string): Run {
  rmSync(out, { force: true });
  const r = spawnSync(process.execPath, [child, ctx, out], { cwd: repo, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`bench/child.ts failed:\n${r.stderr}`);
  const { ms, rssMB } = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { ms: number; rssMB: number };
  return { seconds: ms / 1000, rssMB, bytes: statSync(out).size };
}

/** Paired runs, alternating which packer goes first. */
export function packRatio(name: ContextName, root: string): { ratio: number; zip: Run[]; ours: Run[]; files: number; bytes: number } {
  const ctx = path.join(root, name);
  const child = path.join(root, 'child.js');
  buildSync({ entryPoints: [path.join(__dirname, 'child.ts')], outfile: child, bundle: true, platform: 'node', target: 'node20', mainFields: ['module', 'main'], logLevel: 'warning' });
  progress(`generating the ${name} context …`);
  const generated = generateContext(name, ctx);
  const zip: Run[] = [];
  const ours: Run[] = [];
  const ratios: number[] = [];
  for (let i = 0; i < RUNS[name]; i++) {
    const zipRun = () => runZip(ctx, path.join(root, 'zip.zip'));
    const oursRun = () => runOurs(child, ctx, path.join(root, 'ours.zip'));
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
  rmSync(ctx, { recursive: true, force: true });
  return { ratio: median(ratios), zip, ours, files: generated.files, bytes: generated.bytes };
}

export async function measure(): Promise<BenchRow[]> {
  const root = mkdtempSync(path.join(process.env.BENCH_DIR ?? tmpdir(), 'bench-pack-'));
  try {
    const rows: BenchRow[] = [];
    for (const name of ['app', 'monorepo'] as const) {
      const r = packRatio(name, root);
      const zipS = median(r.zip.map((x) => x.seconds));
      const oursS = median(r.ours.map((x) => x.seconds));
      const sizeRatio = r.ours[0]!.bytes / r.zip[0]!.bytes;
      const what = `${fixed(r.bytes / MB, 0)} MB, ${r.files.toLocaleString('en')} files`;
      rows.push({
        group: 'packing',
        metric: `pack *${name}* (${what}), time vs \`zip -r -6\``,
        value: `${fixed(r.ratio)}× (median of ${r.zip.length} pairs; ${fixed(oursS)} s vs ${fixed(zipS)} s; archive ${fixed(sizeRatio, 3)}× zip's size)`,
        target: '≤ 0.5×',
        met: r.ratio <= 0.5,
      });
      if (name === 'monorepo') {
        const rss = Math.max(...r.ours.map((x) => x.rssMB));
        rows.push({ group: 'packing', metric: `pack *${name}*, peak RSS`, value: `${fixed(rss, 0)} MB`, target: '≤ 256 MB', met: rss <= 256 });
      }
    }
    return rows;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}
