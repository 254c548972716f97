/**
 * The stack's TypeScript daemons (the fake AWS, s3rver's wrapper) run as plain JavaScript: each entry bundled by
 * esbuild into node_modules/.cache/stack-daemons, its packages left to node, and built again only when one of its
 * sources changed. Under tsx, resolving and compiling their modules cost each stack start 1.4 CPU-seconds more
 * (2.6–2.9 CPU-seconds against 4.0–4.3 for a stack whose engine and registry were already there), and a test run
 * starts about fifteen stacks.
 */
import fs from 'node:fs';
import path from 'node:path';
import { buildSync, version as esbuildVersion } from 'esbuild';
import { REPO_ROOT } from './paths';
import { readJson, writeAtomically } from './process';

/** What a script was built by, and each of its sources as `mtime:size` by its path relative to the root. */
interface Built {
  by: string;
  sources: Record<string, string>;
}

export interface DaemonScriptOptions {
  /** Where the entry's sources are; the script's imports of packages resolve from its node_modules. */
  root?: string;
  /** Where the scripts are kept: under root, so that those imports resolve. */
  cacheDir?: string;
}

const BUILD_OPTIONS = {
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  packages: 'external',
  metafile: true,
  write: false,
  logLevel: 'silent',
} as const;
/** Another esbuild or other options build the script again. */
const BUILT_BY = `${esbuildVersion} ${JSON.stringify(BUILD_OPTIONS)}`;

/** The JavaScript file to run for `entry` (a .ts file under root), built now if it is missing or stale. */
export function daemonScript(entry: string, opts: DaemonScriptOptions = {}): string {
  const root = opts.root ?? REPO_ROOT;
  const cacheDir = opts.cacheDir ?? path.join(root, 'node_modules', '.cache', 'stack-daemons');
  const name = path.relative(root, entry).replace(/\.ts$/, '').replaceAll('/', '-');
  const script = path.join(cacheDir, `${name}.mjs`);
  const builtFile = path.join(cacheDir, `${name}.sources.json`);
  if (fs.existsSync(script) && isCurrent(root, readJson<Built>(builtFile))) return script;

  fs.mkdirSync(cacheDir, { recursive: true });
  const started = Date.now();
  const result = buildSync({ ...BUILD_OPTIONS, entryPoints: [entry], absWorkingDir: root, outfile: script });
  const built: Built = { by: BUILT_BY, sources: {} };
  let changedMeanwhile = false;
  for (const file of Object.keys(result.metafile.inputs)) {
    const stats = statOf(root, file);
    built.sources[file] = stamp(stats);
    changedMeanwhile ||= stats === undefined || stats.mtimeMs >= started;
  }
  // Lanes start stacks at once: each writes whole files under a name of its own and renames them into place, the
  // script before its sources. A source saved while esbuild ran may be newer than the script: then the sources are
  // not written, and the next start builds again.
  writeAtomically(script, result.outputFiles[0]!.contents);
  if (!changedMeanwhile) writeAtomically(builtFile, JSON.stringify(built));
  return script;
}

function isCurrent(root: string, built: Built | undefined): boolean {
  return built?.by === BUILT_BY && Object.entries(built.sources).every(([file, was]) => stamp(statOf(root, file)) === was);
}

function statOf(root: string, file: string): fs.Stats | undefined {
  try {
    return fs.statSync(path.join(root, file));
  } catch {
    return undefined;
  }
}

const stamp = (stats: fs.Stats | undefined) => (stats ? `${stats.mtimeMs}:${stats.size}` : 'missing');
