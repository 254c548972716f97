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

/** Each source of a bundle, as `mtime:size`, by its path relative to the root. */
type Sources = Record<string, string>;

export interface DaemonScriptOptions {
  /** Where the entry's sources are; the script's imports of packages resolve from its node_modules. */
  root?: string;
  /** Where the scripts are kept: under root, so that those imports resolve. */
  cacheDir?: string;
}

/** The JavaScript file to run for `entry` (a .ts file under root), built now if it is missing or stale. */
export function daemonScript(entry: string, opts: DaemonScriptOptions = {}): string {
  const root = opts.root ?? REPO_ROOT;
  const cacheDir = opts.cacheDir ?? path.join(root, 'node_modules', '.cache', 'stack-daemons');
  const name = path.relative(root, entry).replace(/\.ts$/, '').replaceAll('/', '-');
  const script = path.join(cacheDir, `${name}.mjs`);
  const sourcesFile = path.join(cacheDir, `${name}.sources.json`);
  if (fs.existsSync(script) && isCurrent(root, readSources(sourcesFile))) return script;

  fs.mkdirSync(cacheDir, { recursive: true });
  const started = Date.now();
  const result = buildSync({ ...BUILD_OPTIONS, entryPoints: [entry], absWorkingDir: root, outfile: script });
  const sources: Sources = { [BUILT_BY]: builtBy() };
  for (const file of Object.keys(result.metafile.inputs)) sources[file] = stamp(root, file);
  // Lanes start stacks at once: each writes whole files under a name of its own and renames them into place, the
  // script before its sources. A source saved while esbuild ran may be newer than the script: then the sources are
  // not written, and the next start builds again.
  writeAtomically(script, result.outputFiles[0]!.contents);
  const changedMeanwhile = Object.keys(result.metafile.inputs).some((file) => modified(root, file) >= started);
  if (!changedMeanwhile) writeAtomically(sourcesFile, JSON.stringify(sources));
  return script;
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
/** The sources' entry naming what built the script: another esbuild or other options build it again. */
const BUILT_BY = '(esbuild)';
const builtBy = () => `${esbuildVersion} ${JSON.stringify(BUILD_OPTIONS)}`;

function readSources(file: string): Sources | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Sources;
  } catch {
    return undefined;
  }
}

function isCurrent(root: string, sources: Sources | undefined): boolean {
  if (sources?.[BUILT_BY] !== builtBy()) return false;
  return Object.entries(sources).every(([file, was]) => file === BUILT_BY || stamp(root, file) === was);
}

function modified(root: string, file: string): number {
  try {
    return fs.statSync(path.join(root, file)).mtimeMs;
  } catch {
    return Infinity;
  }
}

function stamp(root: string, file: string): string {
  try {
    const { mtimeMs, size } = fs.statSync(path.join(root, file));
    return `${mtimeMs}:${size}`;
  } catch {
    return 'missing';
  }
}

function writeAtomically(file: string, data: string | Uint8Array): void {
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, data);
  fs.renameSync(temp, file);
}
