/**
 * Unit files share their worker's modules (isolate: false in vitest.config.ts, which saves each file from
 * loading them again), so no file may leave the process different for the next: each file's environment and
 * working directory are put back after it, whatever it set.
 */
import { afterAll } from 'vitest';

const env = { ...process.env };
const cwd = process.cwd();

afterAll(() => {
  for (const name of Object.keys(process.env)) if (!(name in env)) delete process.env[name];
  Object.assign(process.env, env);
  process.chdir(cwd);
});
