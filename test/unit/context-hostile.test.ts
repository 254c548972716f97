/**
 * Hostile contexts: odd ignore files, names a zip cannot carry, report directories, and directories
 * swapped for symlinks to the outside while the context is listed or packed.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { listContext } from '../../src/context/listing';
import { ContextError } from '../../src/shared/errors';
import { packContext } from '../../src/context/zip';
import { memoryOutput } from '../helpers/output';

const dirs: string[] = [];
afterAll(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

async function tree(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'hostile-'));
  dirs.push(dir);
  for (const [p, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
    writeFileSync(path.join(dir, p), content);
  }
  return dir;
}

async function problem(root: string, options = {}): Promise<string> {
  const err = await listContext(root, memoryOutput(), options).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(ContextError);
  return (err as Error).message;
}

describe('odd ignore files', () => {
  it('refuses a FIFO named .dockerignore at once instead of waiting on it', { timeout: 5000 }, async () => {
    const root = await tree({ Dockerfile: '' });
    execFileSync('mkfifo', [path.join(root, '.dockerignore')]);
    expect(await problem(root)).toMatch(/^\.dockerignore is a FIFO \(named pipe\), not a file: .* Remove it or replace it with a regular file\.$/);
  });

  it('refuses a directory named .dockerignore with the fix', async () => {
    const root = await tree({ Dockerfile: '', '.dockerignore/x': '' });
    expect(await problem(root)).toMatch(/^\.dockerignore is a directory, not a file: .*Remove it or replace it with a regular file\.$/);
  });

  it('follows a symlinked .dockerignore inside the context, and refuses one leading outside', async () => {
    const outside = await tree({ ignore: 'secret*\n' });
    const root = await tree({ Dockerfile: '', 'config/ignore': 'notes*\n', 'notes.txt': '' });
    symlinkSync('config/ignore', path.join(root, '.dockerignore'));
    const sent = (await listContext(root, memoryOutput())).map((e) => e.path);
    expect(sent).toContain('Dockerfile');
    expect(sent).not.toContain('notes.txt');
    renameSync(path.join(root, '.dockerignore'), path.join(root, 'old-link'));
    symlinkSync(path.join(outside, 'ignore'), path.join(root, '.dockerignore'));
    expect(await problem(root)).toMatch(/^\.dockerignore is a symlink to .*, outside the build context; make it a regular file\.$/);
  });
});

describe('names', () => {
  it('refuses names that are not UTF-8, unless .dockerignore excludes them', async () => {
    const root = await tree({ Dockerfile: '' });
    // Node cannot create such a name from a string; the shell can.
    execFileSync('sh', ['-c', `printf x > "$1/caf$(printf '\\351').txt" && mkdir "$1/dir$(printf '\\377')"`, 'sh', root]);
    const message = await problem(root);
    expect(message.split('\n')).toEqual([
      expect.stringMatching(/names that are not valid UTF-8/),
      '  caf\uFFFD.txt',
      '  dir\uFFFD',
      expect.stringMatching(/^Rename each one to UTF-8/),
    ]);
    writeFileSync(path.join(root, '.dockerignore'), 'caf?.txt\ndir?\n');
    expect((await listContext(root, memoryOutput())).map((e) => e.path)).toEqual(['.dockerignore', 'Dockerfile']);
  });

  it('reports every kind of name problem together', async () => {
    const root = await tree({ Dockerfile: '', 'a\\b': '' });
    execFileSync('sh', ['-c', `printf x > "$1/caf$(printf '\\351')"`, 'sh', root]);
    const err = (await listContext(root, memoryOutput()).catch((e: unknown) => e)) as ContextError;
    expect(err.problems).toHaveLength(2);
  });
});

describe('report directories', () => {
  it('never sends the directories given as skipDirs, and says so', async () => {
    const root = await tree({ Dockerfile: '', '.codebuild-image/build-image/build.json': '{}', '.codebuild-image/other-job/build.json': '{}', 'src/a': '' });
    const out = memoryOutput();
    const sent = (await listContext(root, out, { skipDirs: ['.codebuild-image'] })).map((e) => e.path);
    expect(sent).toEqual(['Dockerfile', 'src', 'src/a']);
    expect(out.lines).toEqual([expect.stringMatching(/^Not sending \.codebuild-image: it holds this program's reports/)]);
  });
});

describe('directories swapped for symlinks to the outside', () => {
  const SECRET = 'outside-secret-content';

  it('while listing: a directory swapped after its parent was read is refused, even as a middle component', async () => {
    const outside = await tree({ 'b/secret.txt': SECRET });
    const root = await tree({ Dockerfile: '', 'a/b/inside.txt': 'inside' });
    execFileSync('mkfifo', [path.join(root, 'a/pipe')]);
    // The FIFO's warning comes while `a` is read, before `a/b` is: swap `a` right then.
    const out = memoryOutput();
    const warn = out.warn;
    out.warn = (line) => {
      warn(line);
      renameSync(path.join(root, 'a'), path.join(root, 'a-moved'));
      symlinkSync(outside, path.join(root, 'a'));
    };
    const err = await listContext(root, out).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ContextError);
    expect((err as Error).message).toBe('a/b changed while the build context was being listed; run the job again once nothing writes to the context.');
  });

  it('while packing: a file reached through a swapped directory is refused and nothing of it is written', async () => {
    const outside = await tree({ 'b/data.txt': SECRET });
    const root = await tree({ Dockerfile: '', 'a/b/data.txt': 'x'.repeat(SECRET.length) });
    const entries = await listContext(root, memoryOutput());
    renameSync(path.join(root, 'a'), path.join(root, 'a-moved'));
    symlinkSync(outside, path.join(root, 'a'));
    const zip = path.join(await tree({}), 'context.zip');
    await expect(packContext(entries, zip)).rejects.toThrow('a/b/data.txt changed while the build context was being packed');
    // The packer removes a failed archive; had it kept one, the secret must not be in it.
    expect(existsSync(zip) && readFileSync(zip).includes(SECRET)).toBe(false);
  });

  it('while packing with the streaming path for large files', async () => {
    const big = 'y'.repeat(64 * 1024);
    const outside = await tree({ 'b/big.bin': big.replace(/^y/, 'S') });
    const root = await tree({ Dockerfile: '', 'a/b/big.bin': big });
    const entries = await listContext(root, memoryOutput());
    renameSync(path.join(root, 'a'), path.join(root, 'a-moved'));
    symlinkSync(outside, path.join(root, 'a'));
    const zip = path.join(await tree({}), 'context.zip');
    await expect(packContext(entries, zip, { streamThreshold: 1024 })).rejects.toThrow('a/b/big.bin changed while the build context was being packed');
  });
});
