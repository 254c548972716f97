/**
 * The demo behind `npm run demo` (scripts/demo.sh runs ensure-deps first): starts the local stack, builds
 * examples/hello through the component, prints the pushed image with its digest, and stops the stack.
 * `npm run demo -- --sign` also signs the image with the fake KMS key (sign_with) and verifies it with cosign.
 *
 * The job runs through gitlab-ci-local on templates/build.yml (the real thing: inputs, variables, the script that
 * checks dist/index.js against the template's pinned sha256), the same way the end-to-end tests run it.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DOCKER_CLI, docker } from '../stack/docker';
import { COSIGN, REPO_ROOT } from '../stack/paths';
import { manifestDigest } from '../stack/registry';
import { startStack, type Stack } from '../stack/stack';
import { readDotenv } from '../test/helpers/dotenv';
import { runOnStack, SELF_COMPONENT, stackInputs } from '../test/helpers/gitlab-ci-local';

const JOB_NAME = 'build-image';
const REPOSITORY = 'group/hello';
const DIST = path.join(REPO_ROOT, 'dist', 'index.js');
/** The job has no time limit of its own here; this only ends a hung gitlab-ci-local. */
const JOB_TIMEOUT_MS = 30 * 60_000;
/** Installed by scripts/ensure-deps.sh. */

async function demo(stack: Stack, sign: boolean): Promise<number> {
  // Kept after the demo (in the stack directory) for a look at the checkout and its reports.
  const project = path.join(stack.dir, 'project');
  // The stack's KMS key (stack/fake-aws/kms.ts), signing as a team's key would.
  const key = sign ? stack.signingKeys[0] : undefined;
  const inputs = stackInputs(stack, JOB_NAME, REPOSITORY, {
    build_args: [`BASE_IMAGE=${stack.baseImage ?? ''}`, 'GREETING=local demo'],
    ...(key ? { sign_with: key.aliasArn } : {}),
  });
  console.log(`\n== Building examples/hello with gitlab-ci-local in ${project}\n`);
  const run = await runOnStack(stack, { include: [{ component: SELF_COMPONENT, inputs }] }, { dir: project, echo: process.stdout, timeoutMs: JOB_TIMEOUT_MS });
  if (run.code !== 0) {
    console.error(`\nThe build job failed (exit ${run.code}); stack logs are in ${path.join(stack.dir, 'logs')}.`);
    return run.code ?? 1;
  }
  const outputs = readDotenv(path.join(project, '.codebuild-image', JOB_NAME, 'build.env'));
  const served = await manifestDigest(stack.registry, REPOSITORY, 'latest');
  if (!outputs.IMAGE_DIGEST || served !== outputs.IMAGE_DIGEST) {
    console.error(`\nThe job reported ${outputs.IMAGE_DIGEST ?? 'no digest'}, but the registry serves ${served ?? 'nothing'} for ${REPOSITORY}:latest.`);
    return 1;
  }
  console.log(`\n== Pushed ${outputs.IMAGE_REF} (tags ${outputs.IMAGE_TAGS})`);
  if (key) verifySignature(stack, key.publicKeyPem, outputs.IMAGE_REF ?? '');
  if (stack.dockerHost) {
    const ran = await docker(stack.dockerHost, ['run', '--rm', '--network', 'none', outputs.IMAGE_REF ?? ''], stack.dockerConfig);
    console.log(`== ${DOCKER_CLI} run ${outputs.IMAGE_REF}:\n${ran.trimEnd()}`);
  }
  return 0;
}

/** Runs the cosign command that checks the job's signature, and shows it to copy. */
function verifySignature(stack: Stack, publicKeyPem: string, imageRef: string): void {
  const args = ['verify', '--key', publicKeyPem, '--insecure-ignore-tlog=true', '--allow-http-registry', imageRef];
  console.log(`== ${COSIGN} ${args.join(' ')}`);
  const verified = execFileSync(COSIGN, args, { env: { ...process.env, DOCKER_CONFIG: stack.dockerConfig }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  console.log(verified.trimEnd());
}

async function main(): Promise<number> {
  const { values } = parseArgs({ options: { sign: { type: 'boolean', default: false } } });
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
    return await demo(stack, values.sign);
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
