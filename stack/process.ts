import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

/** A daemon started by the stack: its PID is recorded in `<dir>/pids/<name>.pid`. */
export interface Daemon {
  name: string;
  pid: number;
  log: string;
  /** Resolves with the exit code (or signal name) when the process ends. */
  exited: Promise<string>;
}

export function pidDir(dir: string): string {
  return path.join(dir, 'pids');
}

/**
 * Starts `cmd` in its own process group (so a terminal Ctrl-C reaches only the stack's owner, which then stops
 * everything in order) with stdout and stderr in `<dir>/logs/<name>.log`, and records its PID before returning.
 */
export function startDaemon(
  dir: string,
  name: string,
  cmd: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Daemon {
  const log = path.join(dir, 'logs', `${name}.log`);
  fs.mkdirSync(path.dirname(log), { recursive: true });
  fs.mkdirSync(pidDir(dir), { recursive: true });
  const fd = fs.openSync(log, 'a');
  try {
    const child = spawn(cmd, args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    if (child.pid === undefined) throw new Error(`could not start ${name} (${cmd}); is it installed? Run scripts/ensure-deps.sh`);
    const exited = new Promise<string>((resolve) => {
      child.on('exit', (code, signal) => resolve(signal ?? String(code)));
      child.on('error', (e) => resolve(e.message));
    });
    child.unref();
    recordPid(dir, name, child.pid);
    return { name, pid: child.pid, log, exited };
  } finally {
    fs.closeSync(fd);
  }
}

export function recordPid(dir: string, name: string, pid: number): void {
  fs.mkdirSync(pidDir(dir), { recursive: true });
  fs.writeFileSync(path.join(pidDir(dir), `${name}.pid`), `${pid}\n`);
}

/** PIDs recorded in `<dir>/pids`, by daemon name. */
export function recordedPids(dir: string): Map<string, number> {
  const pids = new Map<string, number>();
  let files: string[];
  try {
    files = fs.readdirSync(pidDir(dir));
  } catch {
    return pids;
  }
  for (const file of files.filter((f) => f.endsWith('.pid'))) {
    const pid = Number(fs.readFileSync(path.join(pidDir(dir), file), 'utf8').trim());
    if (Number.isInteger(pid) && pid > 1) pids.set(file.slice(0, -'.pid'.length), pid);
  }
  return pids;
}

export function forgetPid(dir: string, name: string): void {
  fs.rmSync(path.join(pidDir(dir), `${name}.pid`), { force: true });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A zombie (exited, not yet reaped by its parent) still answers signal 0.
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/**
 * True when `pid` is alive and its command line mentions one of `markers` (the stack's directories), so a
 * recycled PID of an unrelated process is never signalled.
 */
export function isOurs(pid: number, markers: string[]): boolean {
  if (!isAlive(pid)) return false;
  try {
    const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
    return markers.some((m) => cmdline.includes(m));
  } catch {
    return false;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

/** Live (not zombie) processes of the process group `pgid`; daemons run in their own group. */
export function groupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after "(comm) ": state ppid pgrp …
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z') members.push(Number(entry));
    } catch {
      // ended while we looked
    }
  }
  return members;
}

/**
 * SIGTERM to the process, SIGKILL if it has not ended after `graceMs`, then SIGKILL to whatever is left of its
 * process group (children a killed daemon could not clean up).
 */
export async function stopPid(pid: number, graceMs = 10_000): Promise<void> {
  signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(50);
  if (isAlive(pid)) signal(pid, 'SIGKILL');
  const killDeadline = Date.now() + 5_000;
  while ((isAlive(pid) || groupMembers(pid).length > 0) && Date.now() < killDeadline) {
    if (groupMembers(pid).length > 0) signal(-pid, 'SIGKILL');
    await sleep(50);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Polls `check` until it returns a value, failing early (with the end of the daemon's log) when the daemon exits.
 */
export async function waitFor<T>(
  daemon: Daemon | undefined,
  what: string,
  check: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let exit: string | undefined;
  void daemon?.exited.then((code) => (exit = code));
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (e) {
      lastError = e;
    }
    const why = exit !== undefined ? `${daemon?.name} exited (${exit})` : Date.now() > deadline ? `timed out after ${timeoutMs} ms` : undefined;
    if (why !== undefined) {
      const detail = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      const log = daemon ? `\n--- end of ${daemon.log} ---\n${tail(daemon.log)}` : '';
      throw new Error(`${what}: ${why}${detail}${log}`);
    }
    await sleep(50);
  }
}

function tail(file: string, lines = 20): string {
  try {
    return fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * A TCP port free on 127.0.0.1 right now, for daemons that cannot report the port they bound. Picked below the
 * kernel's ephemeral range where there is room: a port from listen(0) is back in that range once closed, where any
 * process's next outgoing connection or listen(0) may take it before the daemon binds it.
 */
export async function freePort(): Promise<number> {
  const room = (lowestEphemeralPort() ?? 0) - FIRST_PICKED_PORT;
  for (let attempt = 0; attempt < 20 && room > 1_000; attempt++) {
    const port = FIRST_PICKED_PORT + Math.floor(Math.random() * room);
    if ((await bindAndClose(port).catch(() => undefined)) === port) return port;
  }
  return bindAndClose(0); // no room below the range (or not Linux): the kernel's pick
}

/** The lowest port freePort picks below the ephemeral range. */
export const FIRST_PICKED_PORT = 10_000;

/** The first port of the kernel's ephemeral range (Linux), if it can be read. */
export function lowestEphemeralPort(): number | undefined {
  try {
    const low = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(low) ? low : undefined;
  } catch {
    return undefined;
  }
}

/** Binds `port` on 127.0.0.1 (0: any), closes it again, and returns the port it got. */
function bindAndClose(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Writes `file` whole: under a name of its own, then renamed into place, so a reader never sees it half written. */
export function writeAtomically(file: string, data: string | Uint8Array): void {
  const temp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(temp, data);
  fs.renameSync(temp, file);
}

/** The parsed JSON file, or undefined while it does not exist or is still being written. */
export function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}
