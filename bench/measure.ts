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
 * Runs `command` under GNU time, which writes the numbers `format` asks for (e.g. `%M %e`) to `timeFile`. Resolves
 * when it ends with those numbers (its last line: after "Command exited with non-zero status N", when it did), its
 * exit code, its output, and when it was spawned.
 */
export function underGnuTime(
  format: string,
  command: string[],
  opts: { cwd: string; env: NodeJS.ProcessEnv; timeFile: string },
): Promise<{ values: number[]; code: number | null; output: string; spawnedAt: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', format, '-o', opts.timeFile, ...command], { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const spawnedAt = Date.now();
    let output = '';
    const take = (chunk: Buffer) => {
      output += chunk.toString();
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    child.on('error', reject);
    child.on('close', (code) => {
      const values = readFileSync(opts.timeFile, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
      resolve({ values, code, output, spawnedAt });
    });
  });
}

/**
 * CPU-seconds the whole machine has spent busy since boot (/proc/stat: user, nice, system, irq and softirq; not
 * idle, iowait or the hypervisor's steal). A difference counts every process, and anything else the machine runs.
 */
export function machineCpuSeconds(): number {
  const ticks = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user, nice, system, , , irq, softirq] = ticks;
  return (user! + nice! + system! + irq! + softirq!) / 100; // USER_HZ is 100 on Linux
}

/** CPU-seconds a live process has used, all its threads (/proc/<pid>/stat utime + stime); 0 once it is gone. */
export function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // from field 3 (state) on
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}

/** Progress on stderr, so a long run shows it is alive. */
export const progress = (line: string): void => {
  process.stderr.write(`  ${line}\n`);
};

/**
 * Spawns `cmd` and resolves with the milliseconds from spawn until its stdout has printed a line matching
 * `until` (then kills it with SIGKILL, after `beforeKill` has seen its PID) or, without `until`, until its first
 * output byte. Rejects when the process ends first, with its output.
 */
export function timeToOutput(
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string; until?: RegExp; beforeKill?: (pid: number) => void },
): Promise<number> {
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
      if (child.pid !== undefined) opts.beforeKill?.(child.pid);
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
