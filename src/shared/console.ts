/**
 * Job-log output. GitLab renders `section_start`/`section_end` markers as collapsible sections:
 * https://docs.gitlab.com/ee/ci/jobs/job_logs.html#custom-collapsible-sections
 */
export interface Output {
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
  /** `at` (epoch ms) stamps the marker with another clock's time, e.g. CodeBuild's phase start; default now. */
  sectionStart(id: string, title: string, collapsed?: boolean, at?: number): void;
  sectionEnd(id: string, at?: number): void;
}

const ESC = '\u001b';

function sectionId(id: string): string {
  return id.toLowerCase().replace(/[^a-z0-9_.-]/g, '_');
}

export function consoleOutput(
  write: (s: string) => void = (s) => process.stdout.write(s),
  now: () => number = Date.now,
): Output {
  // GitLab reads the marker's time as whole Unix seconds and shows the difference as the section's duration.
  const ts = (at?: number) => Math.floor((at ?? now()) / 1000);
  return {
    info: (line) => write(`${line}\n`),
    warn: (line) => write(`${ESC}[33mWARNING: ${line}${ESC}[0m\n`),
    error: (line) => write(`${ESC}[31mERROR: ${line}${ESC}[0m\n`),
    sectionStart: (id, title, collapsed = false, at) =>
      write(`${ESC}[0Ksection_start:${ts(at)}:${sectionId(id)}${collapsed ? '[collapsed=true]' : ''}\r${ESC}[0K${title}\n`),
    sectionEnd: (id, at) => write(`${ESC}[0Ksection_end:${ts(at)}:${sectionId(id)}\r${ESC}[0K`),
  };
}
