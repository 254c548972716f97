import { readFileSync } from 'node:fs';

/** Parses a dotenv file as GitLab's artifacts:reports:dotenv does (KEY=VALUE lines). */
export function readDotenv(file: string): Record<string, string> {
  const vars: Record<string, string> = {};
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) vars[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return vars;
}
