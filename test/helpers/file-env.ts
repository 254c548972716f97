/**
 * Unit and end-to-end files share their worker's modules (isolate: false in vitest.config.ts, which saves each
 * file from loading them again), so no file may leave the process different for the next: each file's environment
 * and working directory are put back after it, whatever it set (process.env itself too, where a file replaced it).
 */
import { afterAll } from 'vitest';

const original = process.env;
const values = { ...process.env };
const cwd = process.cwd();

afterAll(() => {
  process.env = original;
  for (const name of Object.keys(process.env)) if (!(name in values)) delete process.env[name];
  Object.assign(process.env, values);
  process.chdir(cwd);
});
