// Bundles src/index.ts into one file, <outdir>/index.js (default dist/), with the licenses of the bundled
// packages in <outdir>/licenses.txt. `--sizes` prints the bytes each package adds to index.js.
//
// esbuild resolves the packages' ES module builds first ("module" before "main"), so unused parts of the
// AWS SDK are dropped (tree-shaking); see docs/development.md and docs/performance.md for the figures against ncc.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build } from 'esbuild';

const args = process.argv.slice(2);
const outdir = args.find((a) => !a.startsWith('--')) ?? 'dist';
const common = {
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
};

// Modules both parts use at run time: the AWS part gets main's instances (errors.ts's classes must be one
// copy for instanceof, buildspec.ts would bring yaml along twice, network-env.ts is read by the input check and by
// the network). Keyed by path under src/, without .ts.
const SHARED = ['shared/errors', 'build/buildspec', 'shared/network-env'];
const src = path.resolve('src');
/** The SHARED key of a relative import, or undefined. */
const sharedKey = (a) => {
  const key = path.relative(src, path.resolve(a.resolveDir, a.path)).replace(/\.[cm]?[jt]s$/, '');
  return SHARED.includes(key) ? key : undefined;
};

// The AWS part (src/aws-part.ts: the AWS SDK and the modules using it) is carried as a string and compiled when
// the commands first load it (loadAws in src/commands/connect.ts), after the first output line: V8 scans a
// string far faster than it parses code, and parsing the SDK was most of the time before that line.
const aws = await build({
  ...common,
  entryPoints: ['src/aws-part.ts'],
  write: false,
  plugins: [
    {
      name: 'shared',
      setup(b) {
        b.onResolve({ filter: /^\.\.?\// }, (a) => {
          const key = sharedKey(a);
          return key ? { path: key, external: true } : undefined;
        });
        // Code compiled by vm has no loader for import(): the SDK's import('node:http') becomes a require.
        b.onResolve({ filter: /^node:/ }, (a) => (a.kind === 'dynamic-import' ? { path: a.path, namespace: 'builtin' } : undefined));
        b.onLoad({ filter: /.*/, namespace: 'builtin' }, (a) => ({ contents: `module.exports = require(${JSON.stringify(a.path)});`, loader: 'js' }));
      },
    },
  ],
});
if (/\bimport\(/.test(aws.outputFiles[0].text.replace(/"[^"]*"/g, ''))) throw new Error('the AWS part still holds an import(), which vm cannot run');
const copied = SHARED.filter((m) => `src/${m}.ts` in aws.metafile.inputs);
if (copied.length > 0) throw new Error(`the AWS part holds its own copy of ${copied.join(', ')}: it must use the main part's`);
const awsSource = aws.outputFiles[0].text;

const result = await build({
  ...common,
  entryPoints: ['src/index.ts'],
  outfile: path.join(outdir, 'index.js'),
  plugins: [
    {
      name: 'aws-as-string',
      setup(b) {
        b.onResolve({ filter: /\/aws-part$/ }, (a) => ({ path: path.resolve(a.resolveDir, `${a.path}.ts`), namespace: 'aws-string' }));
        b.onLoad({ filter: /.*/, namespace: 'aws-string' }, () => ({
          resolveDir: path.resolve('src'),
          loader: 'js',
          contents: [
            ...SHARED.map((m, i) => `const shared${i} = require(${JSON.stringify(`./${m}`)});`),
            `const shared = { ${SHARED.map((m, i) => `${JSON.stringify(m)}: shared${i}`).join(', ')} };`,
            `const source = ${JSON.stringify(awsSource)};`,
            `const load = require('node:vm').runInThisContext('(function (exports, require, module, __filename, __dirname) {' + source + '\\n})', { filename: 'index.js (AWS part)' });`,
            'const part = { exports: {} };',
            'load(part.exports, (id) => shared[id] ?? require(id), part, __filename, __dirname);',
            'module.exports = part.exports;',
          ].join('\n'),
        }));
      },
    },
  ],
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
const inputs = [Object.values(result.metafile.outputs)[0].inputs, Object.values(aws.metafile.outputs)[0].inputs];
for (const [input, info] of inputs.flatMap((i) => Object.entries(i))) {
  if (input.startsWith('aws-string:')) continue; // the AWS part as a string: counted from its own build
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
