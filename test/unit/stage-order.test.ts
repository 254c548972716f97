// The lint rule that keeps src/'s imports flowing one way (scripts/eslint-stage-order.mjs), run through the
// project's own ESLint config as `npx eslint .` runs it.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STAGES, stageOf } from '../../scripts/eslint-stage-order.mjs';
import { repoRoot as repo } from '../helpers/gitlab-ci-local';

const eslint = new ESLint({ cwd: repo });
// The rule resolves src/ from ESLint's cwd, not the process's: the tests run from elsewhere to prove it.
let cwd: string;
beforeAll(() => {
  cwd = process.cwd();
  process.chdir('/');
});
afterAll(() => process.chdir(cwd));

/** The stage-order messages for `code` as if it were the file at `path` (relative to the repository). */
async function backUps(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(repo, path) });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'local/stage-order').map((m) => m.message);
}

describe('stage order of src/', () => {
  it('lists the stages in the order a build passes them', () => {
    expect(STAGES).toEqual(['shared/', 'inputs/', 'context/', 'aws/', 'registry/', 'build/', 'follow/', 'sign/', 'report/', 'aws-part.ts', 'commands/', 'main.ts', 'index.ts']);
  });

  it('refuses an import that runs back up, in every form', async () => {
    const code = [
      "import { followBuild } from '../follow/follower';",
      "export { writeReports } from '../report/files';",
      "export * from '../commands/build';",
      "export const later = () => import('../aws-part');",
      "import follower = require('../follow/follower');",
      "export type Builds = typeof import('../follow/builds');",
      "export const main = () => import('../main.js');",
    ].join('\n');
    const messages = await backUps('src/build/example.ts', code);
    expect(messages).toHaveLength(7);
    expect(messages[0]).toContain('build/example.ts (stage build/) imports follow/follower (stage follow/), a later stage');
    expect(messages[3]).toContain('imports aws-part (stage aws-part.ts)');
  });

  it('allows the same folder and earlier stages', async () => {
    const code = [
      "import { shown } from '../shared/shown';",
      "import type { Settings } from '../inputs/settings';",
      "import { jobTokenLogin } from '../registry/job-token';",
      "import { BUILD_SCRIPT } from './build-script';",
      "import { readFileSync } from 'node:fs';",
    ].join('\n');
    expect(await backUps('src/build/example.ts', code)).toEqual([]);
  });

  it('lets the top import every stage, and keeps the commands above the lazy AWS part', async () => {
    expect(await backUps('src/main.ts', "import { buildCommand } from './commands/build';")).toEqual([]);
    expect(await backUps('src/commands/connect.ts', "export const loadAws = () => import('../aws-part');")).toEqual([]);
    expect(await backUps('src/aws-part.ts', "export { stopCommand } from './commands/stop';")).toHaveLength(1);
    expect(await backUps('src/shared/errors.ts', "import { run } from '../main';")).toHaveLength(1);
  });

  it('places every file and folder of src/ in a stage, and refuses a module outside them', async () => {
    const unplaced = readdirSync(join(repo, 'src')).filter((name) => stageOf(name.endsWith('.ts') ? name : join(name, 'x.ts')) === -1);
    expect(unplaced).toEqual([]);
    expect(await backUps('src/helpers/example.ts', "import { shown } from '../shared/shown';")).toEqual([
      expect.stringContaining('helpers/example.ts is in no stage of src/: put it in one, or add its folder to STAGES'),
    ]);
  });

  it('does not apply outside src/', async () => {
    expect(await backUps('test/unit/example.ts', "import { run } from '../../src/main';")).toEqual([]);
  });
});
