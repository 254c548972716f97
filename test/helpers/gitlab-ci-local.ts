/**
 * Runs consumer pipelines with gitlab-ci-local (https://github.com/firecow/gitlab-ci-local) in a
 * throw-away git repository that stands in for this component's project on a GitLab server.
 *
 * gitlab-ci-local reads `include: component: <host>/<path>/build@<ref>` from the working tree, without
 * any network, when <path> is the `origin` remote's project path and <ref> is HEAD's commit SHA: exactly
 * how GitLab's docs test a component in its own project (`$CI_SERVER_FQDN/$CI_PROJECT_PATH/build@$CI_COMMIT_SHA`).
 */
import { spawn, execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { stripVTControlCharacters } from 'node:util';
import { dirname, join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import type { Stack } from '../../stack/stack';

export const repoRoot = resolve(__dirname, '../..');
/** gitlab-ci-local wants a newer Node than the machine's 20: use the node@22 dev dependency. */
const node22 = join(repoRoot, 'node_modules/node/bin/node');
const cli = join(repoRoot, 'node_modules/gitlab-ci-local/dist/index.js');

/** The fake GitLab the repository's `origin` points at. */
export const server = { host: 'gitlab.example.com', projectPath: 'acme/codebuild-image' };
export const componentPrefix = `${server.host}/${server.projectPath}`;
/** The include GitLab's docs give for testing a component in its own project; local under gitlab-ci-local. */
export const SELF_COMPONENT = '$CI_SERVER_FQDN/$CI_PROJECT_PATH/build@$CI_COMMIT_SHA';

export interface ComponentRepo {
  dir: string;
  /** HEAD's commit SHA: the ref that makes a component include local. */
  sha: string;
  /** `<host>/<project>/build@<sha>` */
  component: string;
  remove(): void;
}

export interface RepoOptions {
  /** Where to create the repository (emptied first); default a new temporary directory. */
  dir?: string | undefined;
  /** Folder (relative to the repo root) whose files become the repository root, e.g. test/fixtures/consumer-minimal. */
  fixture?: string;
  /** More files: path in the repository → content. `.gitlab-ci.yml` may be given here. */
  files?: Record<string, string>;
  /** Files or folders of this repository to copy in as well, e.g. ['dist/index.js']. templates/ always is. */
  copy?: string[];
  /** The project path of the repository's `origin`; default server.projectPath. */
  projectPath?: string;
}

/** A committed git repository holding templates/, the fixture and files, with a fake `origin`. */
export function makeComponentRepo(opts: RepoOptions = {}): ComponentRepo {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'cbi-glcl-'));
  if (opts.dir) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
  }
  const git = (...args: string[]) =>
    execFileSync('git', args, {
      cwd: dir,
      encoding: 'utf8',
      env: { ...process.env, GIT_AUTHOR_NAME: 'test', GIT_AUTHOR_EMAIL: 'test@example.com', GIT_COMMITTER_NAME: 'test', GIT_COMMITTER_EMAIL: 'test@example.com' },
    }).trim();
  for (const path of ['templates', ...(opts.copy ?? [])]) {
    cpSync(join(repoRoot, path), join(dir, path), { recursive: true });
  }
  if (opts.fixture) cpSync(join(repoRoot, opts.fixture), dir, { recursive: true });
  for (const [path, content] of Object.entries(opts.files ?? {})) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  git('init', '-q', '-b', 'main');
  const projectPath = opts.projectPath ?? server.projectPath;
  git('remote', 'add', 'origin', `https://${server.host}/${projectPath}.git`);
  git('add', '-A');
  git('commit', '-q', '-m', 'fixture');
  const sha = git('rev-parse', 'HEAD');
  // gitlab-ci-local asks origin for its default branch; answer locally instead of over the network.
  git('update-ref', 'refs/remotes/origin/main', sha);
  git('symbolic-ref', 'refs/remotes/origin/HEAD', 'refs/remotes/origin/main');
  return { dir, sha, component: `${server.host}/${projectPath}/build@${sha}`, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export interface GitlabCiLocalOptions {
  /** `--variable KEY=VALUE` for every job. */
  variables?: Record<string, string>;
  /** Kill gitlab-ci-local after this long (it then returns code null). Default 60 s. */
  timeoutMs?: number;
  /** Extra environment for gitlab-ci-local itself (and shell-executor jobs). */
  env?: Record<string, string>;
  /** Called with the output so far as it streams, e.g. to cancel a job mid-way. */
  onOutput?: (all: string) => void;
  /** Also written here as it streams, e.g. process.stdout to show the job live. */
  echo?: NodeJS.WritableStream | undefined;
  /**
   * Variables for every job, written to `.gitlab-ci-local-variables.yml` (mode 0600) instead of the command
   * line, where a token would show in `ps`. The file is written after the commit, so it stays untracked.
   */
  variablesFile?: Record<string, string>;
  /** Host environment variables to leave out of gitlab-ci-local's (and so shell jobs') environment, e.g. /^AWS_/. */
  dropHostEnv?: RegExp;
}

export interface GitlabCiLocalResult {
  code: number | null;
  /** stdout and stderr together, colours stripped. */
  output: string;
}

/** Runs `gitlab-ci-local <args>` in `dir`; never throws for a non-zero exit. */
export function gitlabCiLocal(dir: string, args: string[], opts: GitlabCiLocalOptions = {}): Promise<GitlabCiLocalResult> {
  const home = join(dir, '.gitlab-ci-local-home');
  mkdirSync(home, { recursive: true });
  const variableArgs = Object.entries(opts.variables ?? {}).flatMap(([k, v]) => ['--variable', `${k}=${v}`]);
  if (opts.variablesFile) {
    writeFileSync(join(dir, '.gitlab-ci-local-variables.yml'), stringify(opts.variablesFile), { mode: 0o600 });
  }
  const hostEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !opts.dropHostEnv?.test(k)));
  return new Promise((resolvePromise, reject) => {
    const child = spawn(node22, [cli, '--no-color', '--home', home, ...variableArgs, ...args], {
      cwd: dir,
      env: { ...hostEnv, NO_COLOR: '1', ...opts.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    const take = (chunk: Buffer) => {
      output += chunk.toString();
      opts.echo?.write(chunk);
      opts.onOutput?.(output);
    };
    child.stdout.on('data', take);
    child.stderr.on('data', take);
    const timer = setTimeout(() => child.kill('SIGTERM'), opts.timeoutMs ?? 60_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, output: stripVTControlCharacters(output) });
    });
  });
}

/** The pipeline after includes, extends and inputs, as gitlab-ci-local resolves it (`--preview`). */
export async function previewPipeline(dir: string, opts: GitlabCiLocalOptions = {}): Promise<Record<string, unknown>> {
  const { code, output } = await gitlabCiLocal(dir, ['--preview'], opts);
  if (code !== 0) throw new Error(`gitlab-ci-local --preview failed (${code}):\n${output}`);
  // The YAML follows a `---` line; progress lines come before it.
  const yamlText = output.slice(output.indexOf('\n---\n') + 5);
  return parse(yamlText) as Record<string, unknown>;
}

/**
 * Runs jobs of a consumer pipeline for real, on the shell executor (no Docker needed): the job's
 * `image` is ignored and its script runs on this machine with `node` from PATH. Jobs run in
 * `<repo>/.gitlab-ci-local/builds/<job>`; artifacts land in `<repo>/.gitlab-ci-local/artifacts/<job>`.
 * The caller removes the repository (`result.repo.remove()`), so it can read files first.
 */
export async function runPipeline(
  opts: RepoOptions & GitlabCiLocalOptions & { jobs?: string[]; needs?: boolean },
): Promise<GitlabCiLocalResult & { repo: ComponentRepo; read(path: string): string }> {
  const repo = makeComponentRepo(opts);
  const args = ['--force-shell-executor', ...(opts.needs ? ['--needs'] : []), ...(opts.jobs ?? [])];
  try {
    const result = await gitlabCiLocal(repo.dir, args, opts);
    return { ...result, repo, read: (path) => readFileSync(join(repo.dir, path), 'utf8') };
  } catch (e) {
    repo.remove();
    throw e;
  }
}

/** The component's inputs that point a build at the stack; examples/hello is the context. */
export function stackInputs(stack: Stack, jobName: string, repository: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    job_name: jobName,
    aws_region: stack.region,
    role_arn: stack.roleArn,
    project_name: stack.projectName,
    context: 'examples/hello',
    image: `${stack.registry}/${repository}`,
    tags: ['$CI_COMMIT_SHORT_SHA', 'latest'],
    build_args: [`BASE_IMAGE=${stack.baseImage ?? ''}`],
    // The checkout's copy of dist/index.js (see runOnStack), as a consumer's mirror would serve it.
    script_url: 'dist/index.js',
    ...extra,
  };
}

/** A consumer pipeline run on the stack: gitlab-ci-local's output, the token the jobs got, and the checkout. */
export interface StackRun extends GitlabCiLocalResult {
  token: string;
  dir: string;
  remove(): void;
}

/**
 * Runs a consumer pipeline on the shell executor against the local stack, in a checkout holding
 * examples/hello and dist/index.js (plus `copy` and `files`). The jobs reach AWS as a GitLab job would: the stack's endpoints and
 * a token from its OIDC issuer, and nothing from the host's AWS or CI settings. The caller removes the checkout.
 */
export async function runOnStack(
  stack: Stack,
  pipeline: Record<string, unknown>,
  opts: Pick<RepoOptions, 'dir' | 'copy' | 'files'> &
    Pick<GitlabCiLocalOptions, 'echo' | 'timeoutMs'> & {
      /** The jobs' CI_JOB_TOKEN, with CI_REGISTRY the stack's authenticated registry, as GitLab's registry takes it. */
      jobToken?: string;
    } = {},
): Promise<StackRun> {
  const repo = makeComponentRepo({
    dir: opts.dir,
    copy: ['examples/hello', 'dist/index.js', ...(opts.copy ?? [])],
    files: { ...opts.files, '.gitlab-ci.yml': stringify(pipeline) },
  });
  try {
    const token = await stack.signToken();
    // Without a job token of the test's, none: gitlab-ci-local's own would be sent to gitlab.com's API.
    const jobToken = opts.jobToken
      ? { CI_JOB_TOKEN: opts.jobToken, CI_REGISTRY: stack.authRegistry ?? '', CI_API_V4_URL: `${stack.fakeUrl}/gitlab/api/v4` }
      : {};
    const result = await gitlabCiLocal(repo.dir, ['--force-shell-executor', ...(opts.jobToken ? [] : ['--unset-variable', 'CI_JOB_TOKEN'])], {
      variablesFile: {
        ...stack.env,
        // gitlab-ci-local has no id_tokens: the token arrives as the variable id_tokens would fill.
        GITLAB_OIDC_TOKEN: token,
        ...jobToken,
      },
      // gitlab-ci-local gives shell jobs the docker executor's /builds/<path>; they run in the checkout itself.
      // (On the command line: the variables file would take an existing path for a file variable.)
      variables: { CI_PROJECT_DIR: repo.dir },
      // The host's AWS settings (e.g. AWS_CA_BUNDLE) and CI variables must not reach the program.
      dropHostEnv: /^(AWS_|CI_|GITLAB_|CODEBUILD_IMAGE_)/,
      timeoutMs: opts.timeoutMs ?? 180_000,
      echo: opts.echo,
    });
    return { ...result, token, dir: repo.dir, remove: repo.remove };
  } catch (e) {
    repo.remove();
    throw e;
  }
}
