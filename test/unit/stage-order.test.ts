// The lint rule that keeps src/'s imports flowing one way (scripts/eslint-stage-order.mjs), run through the
// project's own ESLint config as `npx eslint .` runs it.
import { join } from 'node:path';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { STAGES } from '../../scripts/eslint-stage-order.mjs';

const repo = join(__dirname, '../..');
const eslint = new ESLint({ cwd: repo });

/** The stage-order messages for `code` as if it were the file at `path` (relative to the repository). */
async function backUps(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(repo, path) });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'local/stage-order').map((m) => m.message);
}

describe('stage order of src/', () => {
  it('lists the stages in the order a build passes them', () => {
    expect(STAGES).toEqual(['shared/', 'inputs/', 'context/', 'aws/', 'registry/', 'build/', 'follow/', 'report/', 'aws-part.ts', 'commands/', 'main.ts', 'index.ts']);
  });

  it('refuses an import that runs back up, in every form', async () => {
    const code = [
      "import { followBuild } from '../follow/follower';",
      "export { writeReports } from '../report/files';",
      "export * from '../commands/build';",
      "export const later = () => import('../aws-part');",
    ].join('\n');
    const messages = await backUps('src/build/example.ts', code);
    expect(messages).toHaveLength(4);
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

  it('does not apply outside src/', async () => {
    expect(await backUps('test/unit/example.ts', "import { run } from '../../src/main';")).toEqual([]);
  });
});
