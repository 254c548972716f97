// Files and directories of the checkout: context, dockerfile, buildspec (read and checked as YAML) and report_dir.
import fs from 'node:fs';
import path from 'node:path';
import { dirInside, fileInside, isInside, toPosix } from './checkout-paths';
import { atMost, AwsLimits, formatCount } from './limits';
import { type InputName, Inputs } from './names';
import type { Problems } from './problems';
import { shown } from '../shared/shown';
import { yaml } from '../shared/yaml';

export function readContext(p: Problems, given: string, checkout: string | undefined): string {
  if (!checkout) return '';
  const r = dirInside(checkout, given);
  if ('real' in r) return r.real;
  p.add(Inputs.Context, `${r.problem}; give a directory of the checkout, relative to it`);
  return '';
}

/** The POSIX path, relative to `root`, of the file `given` names inside `root`; undefined after adding a problem. */
function readFileInside(p: Problems, input: InputName, root: string, given: string, fix: string): string | undefined {
  const r = fileInside(root, given);
  if ('real' in r) return toPosix(path.relative(root, r.real));
  p.add(input, r.problem.endsWith('is not a file') ? r.problem : `${r.problem}; ${fix}`);
  return undefined;
}

export function readDockerfile(p: Problems, given: string, contextDir: string, userBuildspec: boolean): string {
  const normalized = path.posix.normalize(toPosix(given));
  if (userBuildspec || !contextDir) return normalized;
  return readFileInside(p, Inputs.Dockerfile, contextDir, given, 'give the Dockerfile path relative to the context directory') ?? normalized;
}

/** The user's buildspec: its path relative to the checkout and its text, checked to be a YAML buildspec (the content is theirs). */
export function readBuildspec(p: Problems, given: string, checkout: string | undefined): { path: string; text: string } | undefined {
  if (!given) return undefined;
  const file = checkout && readFileInside(p, Inputs.Buildspec, checkout, given, 'give a file of the repository, relative to its root');
  if (!checkout || !file) return { path: given, text: '' };
  const problem = (message: string) => {
    p.add(Inputs.Buildspec, message);
    return { path: file, text: '' };
  };
  let text: string;
  try {
    text = fs.readFileSync(path.join(checkout, file), 'utf8');
  } catch (e) {
    return problem(`cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let doc: unknown;
  try {
    doc = yaml().parse(text);
  } catch (e) {
    return problem(`${file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null || !('version' in doc) || !('phases' in doc)) {
    return problem(`${file} is not a CodeBuild buildspec (it needs "version" and "phases")`);
  }
  if (text.length > AwsLimits.inlineBuildspec.max) {
    return problem(`${file} is ${formatCount(text.length)} characters; AWS takes ${atMost(AwsLimits.inlineBuildspec)} (the job sends it as buildspecOverride): move commands into a script of the repository that the buildspec runs`);
  }
  return { path: file, text };
}

export function readReportDir(p: Problems, given: string, checkout: string | undefined): string {
  if (!checkout) return given;
  const dir = path.resolve(checkout, given);
  // GitLab only collects artifacts from inside the project directory.
  if (!isInside(checkout, dir) || dir === checkout) p.add(Inputs.ReportDir, `${shown(given)} must be a subdirectory of the checkout ${shown(checkout)}`);
  return dir;
}
