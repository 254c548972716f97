/**
 * The demo behind `npm run demo` (scripts/demo.sh runs ensure-deps first): starts the local stack, builds
 * examples/hello through the component, prints the pushed image with its digest, and stops the stack.
 *
 * The job runs through gitlab-ci-local on templates/build.yml (the real thing: inputs, variables, the script that
 * checks dist/index.js against the template's pinned sha256), or with DEMO_RUNNER=node as `node dist/index.js`
 * with the variables the template's job sets.
 */
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { stringify } from 'yaml';
import { DOCKER_CLI, docker } from '../stack/docker';
import { REPO_ROOT } from '../stack/paths';
import { manifestDigest } from '../stack/registry';
import { startStack, type Stack } from '../stack/stack';
import { readDotenv } from '../test/helpers/dotenv';

const RUNNER = process.env.DEMO_RUNNER === 'node' ? 'node' : 'gitlab-ci-local';

const JOB_NAME = 'build-image';
const REPOSITORY = 'group/hello';
const DIST = path.join(REPO_ROOT, 'dist', 'index.js');

/** Template inputs of the demo job (as a consumer writes them in `include: inputs:`). */
interface DemoInputs {
  job_name: string;
  aws_region: string;
  role_arn: string;
  project_name: string;
  context: string;
  image: string;
  tags: string[];
  build_args: string[];
  script_url: string;
}

function demoInputs(stack: Stack): DemoInputs {
  return {
    job_name: JOB_NAME,
    aws_region: stack.region,
    role_arn: stack.roleArn,
    project_name: stack.projectName,
    context: 'hello',
    image: `${stack.registry}/${REPOSITORY}`,
    tags: ['latest', '$CI_COMMIT_SHORT_SHA'],
    build_args: [`BASE_IMAGE=${stack.baseImage ?? ''}`, 'GREETING=local demo'],
    script_url: DIST,
  };
}

/**
 * A throwaway GitLab project that is also the component's project: examples/hello under hello/, the template,
 * a commit and an origin remote. Returns the commit SHA.
 */
function makeProject(dir: string): string {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'templates'), { recursive: true });
  fs.cpSync(path.join(REPO_ROOT, 'examples', 'hello'), path.join(dir, 'hello'), { recursive: true });
  fs.copyFileSync(path.join(REPO_ROOT, 'templates', 'build.yml'), path.join(dir, 'templates', 'build.yml'));
  fs.writeFileSync(path.join(dir, '.gitignore'), '.gitlab-ci-local/\n.gitlab-ci-local-variables.yml\n.codebuild-image/\n.gitlab-ci.yml\n');
  const git = (...args: string[]) =>
    execFileSync('git', ['-c', 'user.name=Demo', '-c', 'user.email=demo@example.com', ...args], { cwd: dir, stdio: 'ignore' });
  git('init', '--quiet', '--initial-branch=main');
  git('add', '.');
  git('commit', '--quiet', '-m', 'demo');
  // gitlab-ci-local derives CI_SERVER_URL (the token audience) and CI_PROJECT_PATH from the origin remote.
  git('remote', 'add', 'origin', `https://gitlab.example.com/${REPOSITORY}.git`);
  git('update-ref', 'refs/remotes/origin/main', 'HEAD');
  git('symbolic-ref', 'refs/remotes/origin/HEAD', 'refs/remotes/origin/main');
  return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: dir, encoding: 'utf8' }).trim();
}

/**
 * The consumer's .gitlab-ci.yml. gitlab-ci-local reads a component from the checkout when its project is the
 * checkout's own and the version is the current commit (GitLab's way to test a component in its project).
 */
function writePipeline(stack: Stack, dir: string, sha: string): void {
  const component = `gitlab.example.com/${REPOSITORY}/build@${sha}`;
  fs.writeFileSync(path.join(dir, '.gitlab-ci.yml'), stringify({ include: [{ component, inputs: demoInputs(stack) }] }));
}

/** Environment shared by both runners: the stack's endpoints and the job's OIDC token, and no real AWS credentials. */
function jobEnv(stack: Stack, token: string): Record<string, string> {
  return { ...stack.env, GITLAB_OIDC_TOKEN: token };
}

function hostEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of Object.keys(env)) {
    if (/^(AWS_|CI_|GITLAB_|CODEBUILD_IMAGE_)/.test(name)) delete env[name];
  }
  return env;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: 'inherit' });
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

/** The job through gitlab-ci-local (Node 22 from the node@22 dev dependency), shell executor. */
function runGitlabCiLocal(stack: Stack, project: string, token: string): Promise<number> {
  // Variables go through a file: a token on the command line would show in `ps`.
  fs.writeFileSync(path.join(project, '.gitlab-ci-local-variables.yml'), stringify(jobEnv(stack, token)), { mode: 0o600 });
  const node22 = path.join(REPO_ROOT, 'node_modules', 'node', 'bin', 'node');
  const cli = path.join(REPO_ROOT, 'node_modules', 'gitlab-ci-local', 'dist', 'index.js');
  // The job image (node:22-alpine) cannot be pulled here; no GitLab API to watch the job through either.
  // gitlab-ci-local's CI_PROJECT_DIR is the docker executor's /builds/<path> even for the shell executor.
  const args = [cli, '--force-shell-executor', '--unset-variable', 'CI_JOB_TOKEN', '--variable', `CI_PROJECT_DIR=${project}`, JOB_NAME];
  return run(node22, args, project, hostEnv());
}

/** The job as `node dist/index.js` with the CODEBUILD_IMAGE_* variables templates/build.yml sets. */
function runNode(stack: Stack, project: string, token: string, sha: string): Promise<number> {
  const inputs = demoInputs(stack);
  const list = (items: string[]) => JSON.stringify(items.map((s) => s.replace('$CI_COMMIT_SHORT_SHA', sha.slice(0, 8))));
  const env: NodeJS.ProcessEnv = {
    ...hostEnv(),
    ...jobEnv(stack, token),
    CI: 'true',
    CI_SERVER_URL: 'https://gitlab.example.com',
    CI_API_V4_URL: 'https://gitlab.example.com/api/v4',
    CI_PROJECT_DIR: project,
    CI_PROJECT_PATH: REPOSITORY,
    CI_PIPELINE_ID: '1',
    CI_PIPELINE_URL: `https://gitlab.example.com/${REPOSITORY}/-/pipelines/1`,
    CI_JOB_ID: '1',
    CI_JOB_NAME: JOB_NAME,
    CI_JOB_URL: `https://gitlab.example.com/${REPOSITORY}/-/jobs/1`,
    CI_COMMIT_SHA: sha,
    CI_COMMIT_SHORT_SHA: sha.slice(0, 8),
    CI_COMMIT_REF_NAME: 'main',
    CODEBUILD_IMAGE_AWS_REGION: inputs.aws_region,
    CODEBUILD_IMAGE_ROLE_ARN: inputs.role_arn,
    CODEBUILD_IMAGE_ID_TOKEN_VARIABLE: 'GITLAB_OIDC_TOKEN',
    CODEBUILD_IMAGE_OIDC_AUDIENCE: stack.audience,
    CODEBUILD_IMAGE_PROJECT_NAME: inputs.project_name,
    CODEBUILD_IMAGE_CONTEXT: inputs.context,
    CODEBUILD_IMAGE_IMAGE: inputs.image,
    CODEBUILD_IMAGE_TAGS: list(inputs.tags),
    CODEBUILD_IMAGE_BUILD_ARGS: list(inputs.build_args),
    CODEBUILD_IMAGE_REPORT_DIR: `.codebuild-image/${inputs.job_name}`,
  };
  return run(process.execPath, [DIST], project, env);
}

async function demo(stack: Stack): Promise<number> {
  const project = path.join(stack.dir, 'project');
  const sha = makeProject(project);
  writePipeline(stack, project, sha);
  const token = await stack.signToken({ project_path: REPOSITORY, ref: 'main' });
  console.log(`\n== Building examples/hello with ${RUNNER === 'node' ? 'node dist/index.js' : 'gitlab-ci-local'} in ${project}\n`);
  const code = RUNNER === 'node' ? await runNode(stack, project, token, sha) : await runGitlabCiLocal(stack, project, token);
  if (code !== 0) {
    console.error(`\nThe build job failed (exit ${code}); stack logs are in ${path.join(stack.dir, 'logs')}.`);
    return code;
  }
  const outputs = readDotenv(path.join(project, '.codebuild-image', JOB_NAME, 'build.env'));
  const served = await manifestDigest(stack.registry, REPOSITORY, 'latest');
  if (!outputs.IMAGE_DIGEST || served !== outputs.IMAGE_DIGEST) {
    console.error(`\nThe job reported ${outputs.IMAGE_DIGEST ?? 'no digest'}, but the registry serves ${served ?? 'nothing'} for ${REPOSITORY}:latest.`);
    return 1;
  }
  console.log(`\n== Pushed ${outputs.IMAGE_REF} (tags ${outputs.IMAGE_TAGS})`);
  if (stack.dockerHost) {
    const ran = await docker(stack.dockerHost, ['run', '--rm', '--network', 'none', outputs.IMAGE_REF ?? ''], stack.dockerConfig);
    console.log(`== ${DOCKER_CLI} run ${outputs.IMAGE_REF}:\n${ran.trimEnd()}`);
  }
  return 0;
}

async function main(): Promise<number> {
  if (!fs.existsSync(DIST)) throw new Error(`${DIST} is missing: run \`npm run build\` first`);
  const started = Date.now();
  const stack = await startStack({ dir: path.join(REPO_ROOT, '.stack', 'demo') });
  console.log(`== Local stack up in ${((Date.now() - started) / 1000).toFixed(1)} s: registry ${stack.registry}, fake AWS ${stack.fakeUrl}`);
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= stack.stop());
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => void stop().then(() => process.exit(130)));
  }
  // Output piped into `head` must not cut the clean-up short: ignore EPIPE, stop on anything else unexpected.
  for (const stream of [process.stdout, process.stderr]) stream.on('error', () => undefined);
  process.once('uncaughtException', (e) => {
    console.error(e);
    void stop().finally(() => process.exit(1));
  });
  try {
    return await demo(stack);
  } finally {
    await stop();
    console.log('== Local stack stopped');
  }
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  },
);
