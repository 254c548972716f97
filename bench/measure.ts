/** Helpers shared by the bench modules. */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

export const fixed = (x: number, digits = 2): string => x.toFixed(digits);

/**
 * CPU-seconds the whole machine has spent busy since boot (/proc/stat: every state but idle and iowait). A
 * difference counts every process, servers and worker threads included, and anything else the machine runs.
 */
export function machineCpuSeconds(): number {
  const ticks = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq, steal] = ticks;
  return (user! + nice! + system! + irq! + softirq! + steal!) / 100; // USER_HZ is 100 on Linux
}

/** Progress on stderr, so a long run shows it is alive. */
export const progress = (line: string): void => {
  process.stderr.write(`  ${line}\n`);
};

/**
 * Spawns `cmd` and resolves with the milliseconds from spawn until its stdout has printed a line matching
 * `until` (then kills it with SIGKILL) or, without `until`, until its first output byte. Rejects when the
 * process ends first, with its output.
 */
export function timeToOutput(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; until?: RegExp }): Promise<number> {
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let done = false;
    const take = (chunk: Buffer, isStdout: boolean) => {
      output += chunk.toString();
      if (done || !isStdout || (opts.until && !opts.until.test(output))) return;
      done = true;
      const ms = performance.now() - start;
      child.kill('SIGKILL');
      resolve(ms);
    };
    child.stdout.on('data', (c: Buffer) => take(c, true));
    child.stderr.on('data', (c: Buffer) => take(c, false));
    child.on('error', reject);
    child.on('close', (code) => {
      if (!done) reject(new Error(`${cmd} ${args.join(' ')} ended (${code}) before the awaited output:\n${output}`));
    });
  });
}
