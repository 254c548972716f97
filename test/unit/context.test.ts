import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listContext } from '../../src/context/listing';
import { ContextError } from '../../src/shared/errors';
import { memoryOutput } from '../helpers/output';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

/** Creates a context from `files` (path → content; a trailing `/` makes an empty directory). */
async function makeContext(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'ctx-'));
  dirs.push(dir);
  for (const [p, content] of Object.entries(files)) {
    const abs = path.join(dir, p);
    if (p.endsWith('/')) {
      await mkdir(abs, { recursive: true });
    } else {
      await mkdir(path.dirname(abs), { recursive: true });
      await writeFile(abs, content);
    }
  }
  return dir;
}

async function paths(dir: string, dockerfile?: string): Promise<string[]> {
  const entries = await listContext(dir, memoryOutput(), dockerfile ? { dockerfile } : {});
  return entries.map((e) => e.path);
}

const tree = {
  Dockerfile: 'FROM scratch\n',
  'README.md': '',
  'CHANGES.md': '',
  'app.log': '',
  'src/index.ts': '',
  'src/debug.log': '',
  'src/deep/x.log': '',
  'dist/bundle.js': '',
  'dist/keep.txt': '',
  'dist/sub/keep.txt': '',
  'build/out.o': '',
  'lib/c++/header.h': '',
  'lib/cpp.h': '',
  Foo: '',
  'notes.txt': '',
  'docs/guide.txt': '',
};

interface IgnoreCase {
  name: string;
  dockerignore: string;
  sent: string[];
  notSent: string[];
  dockerfile?: string;
  extra?: Record<string, string>;
}

const cases: IgnoreCase[] = [
  { name: 'no rules: everything, directories included', dockerignore: '', sent: ['src', 'src/deep', 'src/deep/x.log', 'dist/sub'], notSent: [] },
  { name: '* matches in the root only', dockerignore: '*.log', sent: ['src/debug.log', 'src/deep/x.log'], notSent: ['app.log'] },
  { name: '**/ matches at any depth', dockerignore: '**/*.log', sent: ['src/index.ts'], notSent: ['app.log', 'src/debug.log', 'src/deep/x.log'] },
  { name: '! re-includes, last match wins', dockerignore: '*.md\n!README.md', sent: ['README.md'], notSent: ['CHANGES.md'] },
  { name: 'an exception before the rule loses', dockerignore: '!README.md\n*.md', sent: [], notSent: ['README.md', 'CHANGES.md'] },
  { name: 'leading / is the context root', dockerignore: '/build\n/src/deep', sent: ['src', 'src/index.ts'], notSent: ['build', 'build/out.o', 'src/deep', 'src/deep/x.log'] },
  { name: 'comments, blank lines and spaces', dockerignore: '# build/\n\n   docs   \n#notes.txt', sent: ['build/out.o', 'notes.txt'], notSent: ['docs', 'docs/guide.txt'] },
  { name: 'trailing slash and ./ are cleaned', dockerignore: './dist/\nsrc/deep/', sent: ['src/index.ts'], notSent: ['dist/bundle.js', 'src/deep/x.log'] },
  {
    name: 'excluded directory with a re-included child',
    dockerignore: 'dist\n!dist/keep.txt',
    sent: ['dist/keep.txt'],
    notSent: ['dist', 'dist/bundle.js', 'dist/sub/keep.txt'],
  },
  {
    name: 'wildcard exception below an excluded directory (no pruning)',
    dockerignore: 'dist\n!**/keep.txt',
    sent: ['dist/keep.txt', 'dist/sub/keep.txt'],
    notSent: ['dist/bundle.js', 'dist/sub'],
  },
  { name: 'directory exception re-includes its contents', dockerignore: 'dist\n!dist/sub', sent: ['dist/sub', 'dist/sub/keep.txt'], notSent: ['dist/keep.txt'] },
  { name: 'regexp characters are literal (c++)', dockerignore: 'lib/c++', sent: ['lib/cpp.h'], notSent: ['lib/c++', 'lib/c++/header.h'] },
  { name: '? matches one character', dockerignore: 'lib/cp?.h', sent: ['lib/c++/header.h'], notSent: ['lib/cpp.h'] },
  { name: 'leading ** is a suffix match, as in moby/patternmatcher', dockerignore: '**.txt', sent: ['src/index.ts'], notSent: ['notes.txt', 'docs/guide.txt', 'dist/sub/keep.txt'] },
  { name: 'case-sensitive', dockerignore: 'foo\nreadme.md', sent: ['Foo', 'README.md'], notSent: [] },
  {
    name: 'Dockerfile and .dockerignore are sent even when excluded',
    dockerignore: '*\n',
    sent: ['Dockerfile', '.dockerignore'],
    notSent: ['README.md', 'src', 'src/index.ts', 'notes.txt'],
  },
  {
    name: 'a Dockerfile in an excluded directory is still sent',
    dockerignore: 'docker\n.dockerignore',
    dockerfile: 'docker/app.Dockerfile',
    extra: { 'docker/app.Dockerfile': 'FROM scratch\n', 'docker/secret.env': '' },
    sent: ['.dockerignore', 'docker/app.Dockerfile'],
    notSent: ['docker', 'docker/secret.env'],
  },
  {
    name: '<Dockerfile>.dockerignore wins over .dockerignore',
    dockerignore: 'src',
    dockerfile: 'app.Dockerfile',
    extra: { 'app.Dockerfile': 'FROM scratch\n', 'app.Dockerfile.dockerignore': 'docs\n' },
    sent: ['src/index.ts', 'app.Dockerfile.dockerignore'],
    notSent: ['docs/guide.txt'],
  },
];

describe('listContext and .dockerignore', () => {
  it.each(cases)('$name', async (c) => {
    const dir = await makeContext({ ...tree, ...c.extra, '.dockerignore': c.dockerignore });
    const listed = await paths(dir, c.dockerfile);
    expect(listed).toEqual(expect.arrayContaining(c.sent));
    for (const p of c.notSent) expect(listed).not.toContain(p);
  });

  it('rejects an invalid pattern, naming the file', async () => {
    const dir = await makeContext({ Dockerfile: '', '.dockerignore': 'ok\n!\n' });
    await expect(listContext(dir, memoryOutput())).rejects.toThrow(/\.dockerignore: illegal exclusion pattern/);
  });
});

describe('listContext entries', () => {
  it('sorts by the bytes of the path and keeps empty directories', async () => {
    const dir = await makeContext({ 'a-b': '', 'a/b': '', 'a/c/': '', B: '', 'é': '', '\u{1F600}': '', '\uFFFD': '' });
    expect(await paths(dir)).toEqual(['B', 'a', 'a-b', 'a/b', 'a/c', 'é', '\uFFFD', '\u{1F600}']);
  });

  it('reports kind, size and full unix mode', async () => {
    const dir = await makeContext({ 'run.sh': '#!/bin/sh\n', 'data.txt': 'hello', 'sub/': '' });
    await chmod(path.join(dir, 'run.sh'), 0o755);
    await chmod(path.join(dir, 'data.txt'), 0o640);
    const entries = await listContext(dir, memoryOutput());
    expect(entries.map(({ path: p, kind, mode, size }) => ({ p, kind, mode: mode.toString(8), size }))).toEqual([
      { p: 'data.txt', kind: 'file', mode: '100640', size: 5 },
      { p: 'run.sh', kind: 'file', mode: '100755', size: 10 },
      { p: 'sub', kind: 'directory', mode: expect.stringMatching(/^40\d{3}$/), size: 0 },
    ]);
  });

  it('keeps symlinks that stay inside the context as links, dangling ones too', async () => {
    const dir = await makeContext({ 'real/file.txt': 'x' });
    await symlink('real/file.txt', path.join(dir, 'link'));
    await symlink('../real', path.join(dir, 'real/self-dir'));
    await symlink('missing.txt', path.join(dir, 'dangling'));
    const entries = await listContext(dir, memoryOutput());
    const links = entries.filter((e) => e.kind === 'symlink').map((e) => [e.path, e.linkTarget, e.size]);
    expect(links).toEqual([
      ['dangling', 'missing.txt', 11],
      ['link', 'real/file.txt', 13],
      ['real/self-dir', '../real', 7],
    ]);
    // the link to a directory is not followed
    expect(entries.map((e) => e.path)).not.toContain('real/self-dir/file.txt');
  });

  it('sends symlinks leaving the context as links, as docker build does, without reading their targets', async () => {
    const outside = await makeContext({ 'secret.txt': 'secret' });
    const dir = await makeContext({ Dockerfile: '' });
    await symlink(path.join(outside, 'secret.txt'), path.join(dir, 'abs-link'));
    await symlink('../../../../../../etc/passwd', path.join(dir, 'rel-link'));
    const entries = await listContext(dir, memoryOutput());
    expect(entries.filter((e) => e.kind === 'symlink').map((e) => [e.path, e.linkTarget])).toEqual([
      ['abs-link', path.join(outside, 'secret.txt')],
      ['rel-link', '../../../../../../etc/passwd'],
    ]);
  });

  it('leaves out an escaping symlink that .dockerignore excludes', async () => {
    const dir = await makeContext({ Dockerfile: '', '.dockerignore': 'rel-link' });
    await symlink('../../etc/passwd', path.join(dir, 'rel-link'));
    expect(await paths(dir)).toEqual(['.dockerignore', 'Dockerfile']);
  });

  it('refuses names holding a backslash (unzip tools disagree on them) unless .dockerignore excludes them', async () => {
    const dir = await makeContext({ Dockerfile: '', 'dir\\name/inner.txt': 'x', 'a\\b.txt': 'y' });
    const err = await listContext(dir, memoryOutput()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ContextError);
    expect((err as Error).message.split('\n')).toEqual([
      expect.stringMatching(/names containing a backslash/),
      '  a\\b.txt',
      '  dir\\name',
      '  dir\\name/inner.txt',
      'Rename each one, or add it to .dockerignore.',
    ]);
    // In .dockerignore a backslash escapes the next character, as in Docker: `\\` matches a backslash.
    await writeFile(path.join(dir, '.dockerignore'), 'a\\\\b.txt\ndir?name\n');
    expect(await paths(dir)).toEqual(['.dockerignore', 'Dockerfile']);
  });

  it('skips a FIFO with a warning', async () => {
    const dir = await makeContext({ Dockerfile: '' });
    execFileSync('mkfifo', [path.join(dir, 'pipe')]);
    const out = memoryOutput();
    const entries = await listContext(dir, out);
    expect(entries.map((e) => e.path)).toEqual(['Dockerfile']);
    expect(out.lines).toEqual([expect.stringMatching(/^WARNING: Skipping pipe: sockets, FIFOs and device files/)]);
  });

  it('fails clearly when the context cannot be listed', async () => {
    const dir = await makeContext({ file: '' });
    await expect(listContext(path.join(dir, 'nope'), memoryOutput())).rejects.toBeInstanceOf(ContextError);
  });
});
