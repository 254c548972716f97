import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { daemonScript } from '../../stack/daemon-script';
import { tempDirs } from '../helpers/temp-dirs';

const tempDir = tempDirs('cbi-daemon-script-');

/** A root with an entry that imports a module of its own and a package (yaml, from this repository's node_modules). */
function project(): { root: string; entry: string; cacheDir: string } {
  const root = tempDir();
  fs.symlinkSync(path.resolve('node_modules'), path.join(root, 'node_modules'));
  fs.mkdirSync(path.join(root, 'daemon'));
  fs.writeFileSync(path.join(root, 'daemon', 'greeting.ts'), "export const greeting: string = 'hello';\n");
  fs.writeFileSync(
    path.join(root, 'daemon', 'main.ts'),
    "import { stringify } from 'yaml';\nimport { greeting } from './greeting';\nprocess.stdout.write(stringify({ greeting }));\n",
  );
  return { root, entry: path.join(root, 'daemon', 'main.ts'), cacheDir: path.join(root, 'cache') };
}

const run = (script: string) => execFileSync(process.execPath, [script], { encoding: 'utf8' });

describe('daemonScript', () => {
  it('bundles the entry with its own modules, leaving packages to node', () => {
    const p = project();
    const script = daemonScript(p.entry, p);
    expect(path.dirname(script)).toBe(p.cacheDir);
    expect(run(script)).toBe('greeting: hello\n');
    expect(fs.readFileSync(script, 'utf8')).toMatch(/from "yaml"/);
  });

  it('keeps the script while its sources are unchanged, and builds it again when one changed', () => {
    const p = project();
    const script = daemonScript(p.entry, p);
    // A build renames a new file into place: the same inode means no build.
    const built = fs.statSync(script).ino;
    expect(fs.statSync(daemonScript(p.entry, p)).ino).toBe(built);

    fs.writeFileSync(path.join(p.root, 'daemon', 'greeting.ts'), "export const greeting: string = 'hello again';\n");
    expect(run(daemonScript(p.entry, p))).toBe('greeting: hello again\n');
  });

  it('builds it again when the script is gone', () => {
    const p = project();
    fs.rmSync(daemonScript(p.entry, p));
    expect(run(daemonScript(p.entry, p))).toBe('greeting: hello\n');
  });
});
