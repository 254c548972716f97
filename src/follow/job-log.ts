import { appendFileSync, writeFileSync } from 'node:fs';
import type { Output } from '../shared/console';
import type { LogEvent, RenderedLine } from './phases';

/** The full build log, next to the other reports; the template keeps it as a job artifact. */
export const BUILD_LOG_FILE = 'build.log';

/**
 * GitLab runners stop collecting a job log at 4 MiB by default (`output_limit`, in KiB). The build log
 * may use this much of it; the rest is left for the job's own lines before and after.
 */
export const STREAMED_LOG_LIMIT = 3.5 * 1024 * 1024;

/**
 * CodeBuild writes an output line longer than an event may be (256 KiB with CloudWatch's 26 bytes of overhead) as
 * several events; all but the last are this long, give or take a UTF-8 sequence, and end without a newline.
 */
const PIECE_BYTES = 262_144 - 26;

function isPiece(message: string): boolean {
  return message.length * 3 >= PIECE_BYTES - 3 && Buffer.byteLength(message) >= PIECE_BYTES - 3;
}

/**
 * Where followed lines go: every CloudWatch event into build.log, and the rendered lines into the job log
 * until they near the runner's limit. Past it, the job log keeps the phase sections, their status and
 * errors, and says once where the rest is.
 */
export class JobLog {
  private bytes = 0;
  private capped = false;
  /** build.log, until writing it fails: the build goes on, and its log stays in CloudWatch. */
  private file: string | undefined;

  constructor(
    private readonly out: Output,
    private readonly opts: { file?: string; limit?: number } = {},
  ) {
    this.file = opts.file;
    // The report directory exists (the build ids are in it); it is never made again here, so a directory
    // removed meanwhile stays removed and the reports say so at the end.
    this.write((file) => writeFileSync(file, ''));
  }

  /** Appends the events, as CloudWatch holds them, to build.log: one line each, a long line's pieces joined again. */
  record(events: LogEvent[]): void {
    if (events.length === 0) return;
    this.write((file) => appendFileSync(file, events.map((e) => (e.message.endsWith('\n') || isPiece(e.message) ? e.message : `${e.message}\n`)).join('')));
  }

  private write(op: (file: string) => void): void {
    if (!this.file) return;
    try {
      op(this.file);
    } catch (e) {
      this.out.warn(`Cannot write ${this.file} (${(e as NodeJS.ErrnoException).code ?? String(e)}): the whole build log stays in CloudWatch Logs only.`);
      this.file = undefined;
    }
  }

  show(lines: RenderedLine[]): void {
    for (const l of lines) {
      if (l.kind === 'line' && !this.room(l.text)) continue;
      if (l.kind === 'open') this.out.sectionStart(l.id, l.title, l.collapsed, l.at);
      else if (l.kind === 'close') this.out.sectionEnd(l.id, l.at);
      else if (l.kind === 'error') this.out.error(l.text);
      else this.out.info(l.text);
    }
  }

  private room(text: string): boolean {
    if (this.capped) return false;
    this.bytes += Buffer.byteLength(text) + 1;
    if (this.bytes <= (this.opts.limit ?? STREAMED_LOG_LIMIT)) return true;
    this.capped = true;
    const where = this.file ? `the job artifact ${this.file}` : 'CloudWatch Logs (see the console link above)';
    this.out.warn(`The job log nears GitLab's 4 MiB limit: from here on it shows only the phases; the whole build log is in ${where}.`);
    return false;
  }
}
