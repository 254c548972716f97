// Bundles src/index.ts into one file, <outdir>/index.js (default dist/), with the licenses of the bundled
// packages in <outdir>/licenses.txt. `--sizes` prints the bytes each package adds to index.js.
//
// esbuild resolves the packages' ES module builds first ("module" before "main"), so unused parts of the
// AWS SDK are dropped (tree-shaking); see docs/development.md and docs/performance.md for the figures against ncc.
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { build, transform } from 'esbuild';

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

// The AWS part (src/aws-part.ts: the AWS SDK and the modules using it) is carried as strings and compiled when
// the commands first load it (loadAws in src/commands/connect.ts), after the first output line: V8 scans a
// string far faster than it parses code, and parsing the SDK was most of the time before that line.
// It is split where the code says import() (esbuild's chunks, as ES modules, each then made CommonJS), and a chunk
// is compiled when first required: what a job never loads (the clients only some jobs use, the SDK's other
// credential providers) costs it nothing.
const shared = {
  name: 'shared',
  setup(b) {
    b.onResolve({ filter: /^\.\.?\// }, (a) => {
      const key = sharedKey(a);
      return key ? { path: key, external: true } : undefined;
    });
  },
};
/** Leaves out (external) the import()s of the modules in `dead`. */
const leaveOut = (dead) => ({
  name: 'leave-out',
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (a) => {
      if (a.kind !== 'dynamic-import' || dead.size === 0 || a.pluginData === 'resolving') return undefined;
      const r = await b.resolve(a.path, { kind: a.kind, importer: a.importer, resolveDir: a.resolveDir, pluginData: 'resolving' });
      return dead.has(r.path) ? { path: a.path, external: true } : undefined;
    });
  },
});
/**
 * esbuild makes a chunk for every import() it sees, also in code it then drops (the SDK's other credential
 * providers import their packages so), and keeps all that chunk exports. A chunk that no chunk names is one of
 * those: the build runs again without those imports until there is none.
 */
async function buildAws() {
  const dead = new Set();
  for (;;) {
    const aws = await build({ ...common, entryPoints: { 'aws-part': 'src/aws-part.ts' }, format: 'esm', splitting: true, outdir: 'aws', write: false, plugins: [shared, leaveOut(dead)] });
    const texts = aws.outputFiles.map((f) => f.text).join('\n');
    const unnamed = Object.entries(aws.metafile.outputs).filter(([file, o]) => o.entryPoint && o.entryPoint !== 'src/aws-part.ts' && !texts.includes(`"./${path.basename(file)}"`));
    if (unnamed.length === 0) return aws;
    const known = dead.size;
    for (const [, o] of unnamed) dead.add(path.resolve(o.entryPoint));
    if (dead.size === known) throw new Error(`the AWS part has chunks that no chunk names: ${unnamed.map(([file]) => file).join(', ')}`);
  }
}
const aws = await buildAws();
const copied = SHARED.filter((m) => Object.values(aws.metafile.outputs).some((o) => `src/${m}.ts` in o.inputs));
if (copied.length > 0) throw new Error(`the AWS part holds its own copy of ${copied.join(', ')}: it must use the main part's`);
/** The chunks by file name, each CommonJS: it requires the others as `./<name>`. */
const chunks = {};
for (const file of aws.outputFiles) {
  const { code: cjs } = await transform(file.text, { format: 'cjs', platform: 'node', target: 'node20', minify: true, logLevel: 'warning' });
  // Code compiled by vm has no loader for import(): a chunk's or a builtin's becomes a require (the SDK's
  // import('node:http') reads `.default ?? module`, which both give). Any other import() was left out above,
  // and must have gone with the code esbuild dropped.
  const code = cjs.replace(/\bimport\(("(?:\.\/|node:)[^"]+")\)/g, 'Promise.resolve().then(()=>require($1))');
  if (/\bimport\(/.test(code.replace(/"[^"]*"/g, ''))) throw new Error(`${file.path} still holds an import(), which vm cannot run`);
  chunks[path.basename(file.path)] = code;
}

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
            `const chunks = ${JSON.stringify(chunks)};`,
            'const loaded = {};',
            'function load(name) {',
            '  if (!loaded[name]) {',
            "    if (!(name in chunks)) throw new Error(`index.js has no AWS part chunk ${name}`);",
            "    const run = require('node:vm').runInThisContext('(function (exports, require, module, __filename, __dirname) {' + chunks[name] + '\\n})', { filename: `index.js (AWS part, ${name})` });",
            '    const part = (loaded[name] = { exports: {} });',
            '    try {',
            "      run(part.exports, (id) => shared[id] ?? (id.startsWith('./') ? load(id.slice(2)) : require(id)), part, __filename, __dirname);",
            '    } catch (e) {',
            '      delete loaded[name]; // as Node forgets a module that threw: a later require runs it again',
            '      throw e;',
            '    }',
            '  }',
            '  return loaded[name].exports;',
            '}',
            "module.exports = load('aws-part.js');",
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
const inputs = [result, aws].flatMap((r) => Object.values(r.metafile.outputs).map((o) => o.inputs));
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
