/**
 * `npm run bench`: runs every bench module's measure() in turn and writes bench/RESULTS.md, one row per
 * figure beside its target. Add a module by adding it to MODULES.
 *
 * Env: BENCH_ONLY=pack,bundle runs only those modules (RESULTS.md then holds only their rows).
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import path from 'node:path';
import type { BenchRow } from './rows';

type Module = { measure(): Promise<BenchRow[]> };

const MODULES: Record<string, () => Promise<Module>> = {
  pack: () => import('./pack'),
  job: () => import('./job'),
  bundle: () => import('./bundle'),
  skip: () => import('./skip'),
  'warm-rebuild': () => import('./warm-rebuild'),
  follow: () => import('./follow'),
  jobs: () => import('./jobs'),
};

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY?.split(',').filter(Boolean);
  const started = performance.now();
  const loadBefore = loadavg()[0]!;
  const rows: BenchRow[] = [];
  for (const [name, load] of Object.entries(MODULES)) {
    if (only && !only.includes(name)) continue;
    process.stderr.write(`bench ${name} …\n`);
    const t = performance.now();
    rows.push(...(await (await load()).measure()));
    process.stderr.write(`bench ${name}: ${((performance.now() - t) / 1000).toFixed(0)} s\n`);
  }
  const minutes = (performance.now() - started) / 60_000;
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const lines = [
    '# Benchmark results',
    '',
    'Written by `npm run bench` (bench/run.ts); do not edit by hand.',
    '',
    `- Date: ${new Date().toISOString()}`,
    `- Machine: ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'})`,
    `- Node: ${process.version}`,
    '- Commands: `npm run bench` for every row; `BENCH_ONLY=pack npm run bench` for one module, and `BENCH_PACK=small,mixed` for some packing contexts (kept in /tmp/codebuild-image-bench, generated on the first run)',
    `- Whole run: ${minutes.toFixed(1)} min; load average (1 min) ${loadBefore.toFixed(1)} before, ${loadavg()[0]!.toFixed(1)} after: other work on the machine slows both sides of every ratio, and the parallel packer most`,
    '',
    '| area | metric | measured | target | met |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${cell(r.group)} | ${cell(r.metric)} | ${cell(r.value)} | ${cell(r.target)} | ${r.met ? 'yes' : '**no**'} |`),
    '',
  ];
  writeFileSync(path.join(__dirname, 'RESULTS.md'), lines.join('\n'));
  process.stdout.write(lines.join('\n'));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
