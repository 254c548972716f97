// Bundles src/index.ts into one file, <outdir>/index.js (default dist/), with the licenses of the bundled
// packages in <outdir>/licenses.txt. `--sizes` prints the bytes each package adds to index.js.
//
// esbuild resolves the packages' ES module builds first ("module" before "main"), so unused parts of the
// AWS SDK are dropped (tree-shaking); see "The bundle" in the README for the figures against ncc.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const args = process.argv.slice(2);
const outdir = args.find((a) => !a.startsWith('--')) ?? 'dist';
const result = await build({
  entryPoints: ['src/index.ts'],
  outfile: path.join(outdir, 'index.js'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  mainFields: ['module', 'main'],
  minify: true,
  // Names kept: some code reads a function's or class's name (error names, SDK commands).
  keepNames: true,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});

/** The package (name and directory) an input path belongs to, or undefined for our own sources. */
function packageOf(input) {
  const at = input.lastIndexOf('node_modules/');
  if (at < 0) return undefined;
  const parts = input.slice(at + 'node_modules/'.length).split('/');
  const name = parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0];
  return { name, dir: `${input.slice(0, at)}node_modules/${name}` };
}

const bytes = new Map();
const dirs = new Map();
for (const [input, info] of Object.entries(Object.values(result.metafile.outputs)[0].inputs)) {
  const pkg = packageOf(input);
  const name = pkg?.name ?? '(src)';
  bytes.set(name, (bytes.get(name) ?? 0) + info.bytesInOutput);
  if (pkg) dirs.set(pkg.name, pkg.dir);
}

const licenses = [...dirs].sort(([a], [b]) => a.localeCompare(b)).map(([name, dir]) => {
  const { version, license } = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const file = readdirSync(dir).find((f) => /^(licen[cs]e|copying)/i.test(f));
  const text = file ? readFileSync(path.join(dir, file), 'utf8').trim() : '(no license file in the package)';
  return `${name}@${version} (${license})\n\n${text}\n`;
});
writeFileSync(path.join(outdir, 'licenses.txt'), licenses.join('\n---\n\n'));

if (args.includes('--sizes')) {
  const total = [...bytes.values()].reduce((a, b) => a + b, 0);
  for (const [name, n] of [...bytes].sort((a, b) => b[1] - a[1])) {
    console.log(`${String(n).padStart(9)} ${((100 * n) / total).toFixed(1).padStart(5)}%  ${name}`);
  }
}
