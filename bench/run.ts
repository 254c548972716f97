/**
 * `npm run bench`: runs every bench module's measure() in turn and writes bench/RESULTS.md, one row per
 * figure beside its target and the run that measured it. Add a module by adding it to MODULES.
 *
 * Env: BENCH_ONLY=pack,bundle runs only those modules: their rows are replaced, the other modules' rows are kept
 * as their own runs wrote them.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import path from 'node:path';
import type { BenchRow } from './rows';

type Module = { measure(): Promise<BenchRow[]> };

const MODULES: Record<string, () => Promise<Module>> = {
  pack: () => import('./pack'),
  job: () => import('./job'),
  'job-cpu': () => import('./job-cpu'),
  bundle: () => import('./bundle'),
  skip: () => import('./skip'),
  'warm-rebuild': () => import('./warm-rebuild'),
  follow: () => import('./follow'),
  loud: () => import('./loud'),
  jobs: () => import('./jobs'),
  suite: () => import('./suite'),
};

const RESULTS = path.join(__dirname, 'RESULTS.md');
const cell = (s: string) => s.replace(/\|/g, '\\|');

/** The table rows of the last RESULTS.md, by the module named in their run cell. */
function previousRows(): Map<string, string[]> {
  const byModule = new Map<string, string[]>();
  if (!existsSync(RESULTS)) return byModule;
  for (const line of readFileSync(RESULTS, 'utf8').split('\n')) {
    const module = /\| module `([\w-]+)`/.exec(line)?.[1];
    if (module) byModule.set(module, [...(byModule.get(module) ?? []), line]);
  }
  return byModule;
}

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY?.split(',').filter(Boolean);
  const started = performance.now();
  const kept = previousRows();
  const table: string[] = [];
  for (const [name, load] of Object.entries(MODULES)) {
    if (only && !only.includes(name)) {
      table.push(...(kept.get(name) ?? []));
      continue;
    }
    process.stderr.write(`bench ${name} …\n`);
    const t = performance.now();
    const loadBefore = loadavg()[0]!;
    const rows = await (await load()).measure();
    const minutes = (performance.now() - t) / 60_000;
    const command = only ? `BENCH_ONLY=${only.join(',')} npm run bench` : 'npm run bench';
    const run = `module \`${name}\`, \`${command}\` on ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ${minutes.toFixed(1)} min, load ${loadBefore.toFixed(1)} → ${loadavg()[0]!.toFixed(1)}`;
    table.push(...rows.map((r) => `| ${cell(r.group)} | ${cell(r.metric)} | ${cell(r.value)} | ${cell(r.target)} | ${r.met ? 'yes' : '**no**'} | ${run} |`));
    process.stderr.write(`bench ${name}: ${(minutes * 60).toFixed(0)} s\n`);
  }
  const lines = [
    '# Benchmark results',
    '',
    'Written by `npm run bench` (bench/run.ts); do not edit by hand.',
    '',
    `- Machine: ${availableParallelism()} cores (${cpus()[0]?.model.trim() ?? 'unknown CPU'}); Node ${process.version}`,
    '- Commands: `npm run bench` for every row; `BENCH_ONLY=pack npm run bench` for one module (its rows are replaced, the others kept), and `BENCH_PACK=small,mixed` for some packing contexts (kept in /tmp/codebuild-image-bench, generated on the first run)',
    '- Each row names the run that measured it and the load average (1 min) before and after: other work on the machine slows both sides of every ratio, and the parallel packer most',
    `- Last run: ${((performance.now() - started) / 60_000).toFixed(1)} min`,
    '',
    '| area | metric | measured | target | met | run |',
    '|---|---|---|---|---|---|',
    ...table,
    '',
  ];
  writeFileSync(RESULTS, lines.join('\n'));
  process.stdout.write(lines.join('\n'));
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
