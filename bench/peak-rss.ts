import { readFileSync } from 'node:fs';

/**
 * This process's own peak: VmHWM, which starts afresh with the program. getrusage's maxRSS does not on Linux: it
 * keeps the high-water mark of the forked copy of the parent, so a bench that had just generated a context in
 * memory reported that instead (788 MB for a 127 MB packer).
 */
export function peakRssKB(): number {
  try {
    const hwm = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (hwm) return Number(hwm[1]);
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS;
}
