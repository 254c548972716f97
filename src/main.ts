/**
 * The program: reads the command and runs it (commands/), turning every error into one exit code and lines
 * the user can act on. The stages, in the order a build passes them: inputs/ → context/ → aws/ → registry/ →
 * build/ → follow/ → report/.
 */
import { parseArgs } from 'node:util';
import { buildCommand } from './commands/build';
import { stopCommand } from './commands/stop';
import { consoleOutput, type Output } from './shared/console';
import { AwsStepError, ContextError, ExitCode, InputError, ReportError } from './shared/errors';
import { escapeControls, shown } from './shared/shown';

export const USAGE = `Usage: node index.js [build | stop | --help]

  build    (default) pack the build context, run the build on AWS CodeBuild, follow it and write the reports
  stop     stop the build this job started (the template's after_script runs it when a job is cancelled)
  --help   print this text

Settings come from CODEBUILD_IMAGE_* variables (the component's inputs) and GitLab's CI_* variables; see README.md.
Exit codes: 0 success, 1 the build did not succeed (or its reports could not be written, or its image could not
be signed), 2 bad input (nothing sent to AWS), 3 AWS, network or machine error.`;

/** Runs `index.js [build|stop|--help]` and returns the process exit code; never throws. */
export async function run(argv: string[], env: NodeJS.ProcessEnv, out: Output = consoleOutput()): Promise<ExitCode> {
  try {
    const command = readCommand(argv);
    if (command === 'help') {
      for (const line of USAGE.split('\n')) out.info(line);
      return ExitCode.Success;
    }
    const checkout = env.CI_PROJECT_DIR ?? process.cwd();
    return await (command === 'stop' ? stopCommand : buildCommand)(env, checkout, out);
  } catch (e) {
    return fail(e, out);
  }
}

function readCommand(argv: string[]): 'build' | 'stop' | 'help' {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, strict: true, options: { help: { type: 'boolean', short: 'h' } } });
  const command = positionals[0] ?? 'build';
  if (values.help || command === 'help') return 'help';
  if (command !== 'build' && command !== 'stop') {
    throw new InputError([{ input: 'command', message: `unknown command ${shown(command)}: use "build" (default), "stop" or --help` }]);
  }
  return command;
}

function fail(e: unknown, out: Output): ExitCode {
  if (e instanceof InputError) {
    // A problem may span lines (a list of paths); every line is printed on its own, escaped.
    for (const p of e.problems) for (const line of `input ${p.input}: ${p.message}`.split('\n')) out.error(escapeControls(line));
    return ExitCode.BadInput;
  }
  if (e instanceof ContextError || e instanceof ReportError) {
    for (const line of e.message.split('\n')) out.error(escapeControls(line));
    return ExitCode.BadInput;
  }
  if (e instanceof AwsStepError) {
    for (const line of e.message.split('\n')) out.error(line);
    return ExitCode.AwsError;
  }
  if (e instanceof TypeError && 'code' in e && typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS_')) {
    out.error(escapeControls(`${e.message.split('\n')[0]}; see --help`));
    return ExitCode.BadInput;
  }
  if (e instanceof Error && 'syscall' in e && 'code' in e) {
    // A failure of the machine running the job (e.g. no space left); the message names the call and path.
    out.error(escapeControls(`${e.message.split('\n')[0]} (on the machine running the job)`));
    return ExitCode.AwsError;
  }
  out.error(`Unexpected error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
  return ExitCode.AwsError;
}
