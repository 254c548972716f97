/**
 * The stack's TypeScript daemons (the fake AWS, s3rver's wrapper) run as plain JavaScript: each entry bundled by
 * esbuild into node_modules/.cache/stack-daemons, its packages left to node, and built again only when one of its
 * sources changed. Under tsx, resolving and compiling their modules cost each stack start 1.4 CPU-seconds more
 * (2.6–2.9 CPU-seconds against 4.0–4.3 for a stack whose engine and registry were already there), and a test run
 * starts about fifteen stacks.
 */
import fs from 'node:fs';
import path from 'node:path';
import { buildSync } from 'esbuild';
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
  const result = buildSync({
    entryPoints: [entry],
    absWorkingDir: root,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    metafile: true,
    write: false,
    outfile: script,
    logLevel: 'silent',
  });
  const sources = Object.fromEntries(Object.keys(result.metafile.inputs).map((file) => [file, stamp(root, file)]));
  // Lanes start stacks at once: each writes whole files under a name of its own and renames them into place, the
  // script before its sources, so sources that look current always come with a script at least as new.
  writeAtomically(script, result.outputFiles[0]!.contents);
  writeAtomically(sourcesFile, JSON.stringify(sources));
  return script;
}

function readSources(file: string): Sources | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as Sources;
  } catch {
    return undefined;
  }
}

function isCurrent(root: string, sources: Sources | undefined): boolean {
  return sources !== undefined && Object.entries(sources).every(([file, was]) => stamp(root, file) === was);
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
