/** Checks that a job log shows each line of the build's stored log (stored-log.ts) once and in order, and the numbered Dockerfile. */
import { randomUUID } from 'node:crypto';
import { expect } from 'vitest';
import { linesNotOnce } from './stored-log';

export { storedLog } from './stored-log';

/** The lines the numbered Dockerfile prints. */
export const NUMBERED = Array.from({ length: 50 }, (_, i) => `line-${String(i + 1).padStart(3, '0')}`);

/**
 * The job's Dockerfile prints 50 numbered lines, which BuildKit's plain progress shows as `#N 0.123 line-001`,
 * after `sleep` seconds and `every` seconds apart. The nonce keeps the layer cache from replaying the step silently
 * (the sleeps are in that step too); the step's own text (shown in `#N [2/2] RUN ...`) holds no `line-NNN`.
 */
export function numberedDockerfile(opts: { sleep?: number | undefined; every?: number | undefined } = {}): string {
  const pause = (s: number | undefined) => (s ? `sleep ${s} && ` : '');
  return [
    'ARG BASE_IMAGE=busybox:stable',
    'FROM ${BASE_IMAGE}',
    `RUN echo "nonce ${randomUUID()}" && ${pause(opts.sleep)}i=1 && while [ $i -le 50 ]; do printf 'line-%03d\\n' $i; ${pause(opts.every)}i=$((i+1)); done`,
    '',
  ].join('\n');
}

/** The Dockerfile's numbered lines, out of BuildKit's `#N <seconds> <line>` progress lines. */
export const numbered = (lines: string[]) => lines.flatMap((l) => /^#\d+ \d+\.\d+ (line-\d{3})$/.exec(l)?.[1] ?? []);

/** Every stored line appears in the job log as often as in the build log (once, for non-blank lines); in order unless told. */
export function expectBuildLogOnce(jobLines: string[], buildLines: string[], opts = { inOrder: true }): void {
  // On failure, the job's own lines about its log (gaps, Live Tail, polling) say what happened.
  const notes = jobLines.filter((l) => /WARNING|Live Tail|polling|earlier lines|missing/.test(l)).join('\n');
  expect(linesNotOnce(jobLines, buildLines), notes).toEqual([]);
  if (!opts.inOrder) return;

  let next = 0;
  for (const l of jobLines) if (next < buildLines.length && l === buildLines[next]) next++;
  expect(buildLines.slice(next, next + 3), 'first build-log line missing from the job log in order').toEqual([]);
}
