/**
 * Job-log output. GitLab renders `section_start`/`section_end` markers as collapsible sections:
 * https://docs.gitlab.com/ee/ci/jobs/job_logs.html#custom-collapsible-sections
 */
export interface Output {
  info(line: string): void;
  warn(line: string): void;
  error(line: string): void;
  sectionStart(id: string, title: string, collapsed?: boolean): void;
  sectionEnd(id: string): void;
}

const ESC = '\u001b';

function sectionId(id: string): string {
  return id.toLowerCase().replace(/[^a-z0-9_.-]/g, '_');
}

export function consoleOutput(
  write: (s: string) => void = (s) => process.stdout.write(s),
  now: () => number = Date.now,
): Output {
  const ts = () => Math.floor(now() / 1000);
  return {
    info: (line) => write(`${line}\n`),
    warn: (line) => write(`${ESC}[33mWARNING: ${line}${ESC}[0m\n`),
    error: (line) => write(`${ESC}[31mERROR: ${line}${ESC}[0m\n`),
    sectionStart: (id, title, collapsed = false) =>
      write(`${ESC}[0Ksection_start:${ts()}:${sectionId(id)}${collapsed ? '[collapsed=true]' : ''}\r${ESC}[0K${title}\n`),
    sectionEnd: (id) => write(`${ESC}[0Ksection_end:${ts()}:${sectionId(id)}\r${ESC}[0K`),
  };
}
