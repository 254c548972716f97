/**
 * The end-to-end files run in lanes, one a vitest worker (VITEST_POOL_ID), several at a time. Each lane has one stack,
 * started by the first file that needs it and reused by the files that follow it in the lane, one after another:
 * a run starts one stack a lane instead of one a file, and no two files that run at once share a stack (their faults,
 * call counts and engine stay their own). The lane stack has what any of its files needs; files whose stack must
 * differ (no dockerd, TLS behind the proxy, the stack itself under test) start their own (stack-for-file.ts).
 *
 * This module is also the e2e project's globalSetup: it stops what a killed run left in the lanes before the files
 * start, and every lane stack once they are done.
 */
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../../stack/paths';
import { attach, livePids, readStack, type Stack, type StackOptions, startStack, stopStack } from '../../stack/stack';

/** What buildkit.test.ts mounts as a secret build arg; the test looks for it in the image. */
export const NPM_TOKEN = { name: 'ci/npm-token', value: 'tok-5ecret-v4lue-9f2c' };
/** The user of the registry that requires one (registries.test.ts). */
export const AUTH_REGISTRY_USER = { username: 'reg-user-7q', password: 'Pw-4uth-r3gistry-c81d' };
/** The job token that registry also takes, as GitLab's registry takes CI_JOB_TOKEN (registries.test.ts). */
export const AUTH_REGISTRY_JOB_TOKEN = 'glcbt-64_J0b-t0ken-e2e-5b1d';

const LANE_OPTIONS: Omit<StackOptions, 'dir'> = {
  freshEngine: true,
  phaseDelayMs: 50,
  secrets: { [NPM_TOKEN.name]: NPM_TOKEN.value },
  authRegistry: AUTH_REGISTRY_USER,
  authRegistryJobToken: AUTH_REGISTRY_JOB_TOKEN,
  // signing.test.ts signs with the first and checks that the second does not verify.
  signingKeys: [{ alias: 'codebuild-image-signing' }, { alias: 'other-team' }],
};

const LANES_DIR = path.join(REPO_ROOT, '.stack');
const LANE_PREFIX = 'e2e-lane-';

/** This worker's lane stack: the one a file before it in the lane started, or a new one. */
export async function laneStack(): Promise<Stack> {
  const dir = path.join(LANES_DIR, `${LANE_PREFIX}${process.env.VITEST_POOL_ID ?? '1'}`);
  const info = readStack(dir);
  if (info && livePids(dir).size === Object.keys(info.pids).length) return attach(info);
  // Nothing there, or a stack with a daemon gone: start afresh. Detached: it outlives this file's worker.
  await stopStack(dir);
  return startStack({ dir, ...LANE_OPTIONS, detached: true });
}

async function stopLanes(): Promise<void> {
  const lanes = fs.existsSync(LANES_DIR) ? fs.readdirSync(LANES_DIR).filter((d) => d.startsWith(LANE_PREFIX)) : [];
  await Promise.all(lanes.map((d) => stopStack(path.join(LANES_DIR, d))));
}

export const setup = stopLanes;
export const teardown = stopLanes;
