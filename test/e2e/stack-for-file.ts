// Test set-up only: it registers vitest hooks, so the benchmarks (which import ./helpers) must not import it.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { fakeControl } from '../../stack/fake-aws/control';
import { type Stack, type StackOptions, startStack } from '../../stack/stack';
import { stopCheckingModels, violationsError } from '../helpers/violations';
import { removeJobs, repoRoot } from './helpers';
import { laneStack } from './lanes';

type Control = ReturnType<typeof fakeControl>;

/**
 * The stack of this file's lane (lanes.ts), shared with the files before and after it in the lane: injected faults
 * cleared after each test, and the file failed if the fake saw, while it ran, a request or answer that breaks AWS's
 * models. `set` receives it; the fake's control is returned.
 */
export function sharedStack(set: (stack: Stack) => void): () => Control {
  let stack: Stack | undefined;
  let violationsBefore = 0;
  const control = hooks(() => stack);
  beforeAll(async () => {
    stack = await laneStack();
    set(stack);
    violationsBefore = (await control().violations()).length;
  });
  afterAll(async () => {
    if (!stack) return;
    const error = violationsError((await control().violations()).slice(violationsBefore));
    if (error) throw error;
  });
  return control;
}

/**
 * One stack for a test file, in `.stack/<name>` (so files can run beside each other): started before its tests,
 * injected faults cleared after each, stopped after all, failing the file if its fake saw a request or answer
 * that breaks AWS's models. `set` receives it; the fake's control is returned.
 */
export function stackForFile(name: string, options: Omit<StackOptions, 'dir'>, set: (stack: Stack) => void): () => Control {
  let stack: Stack | undefined;
  const control = hooks(() => stack);
  beforeAll(async () => {
    stack = await startStack({ dir: join(repoRoot, '.stack', name), freshEngine: true, ...options });
    set(stack);
  });
  afterAll(async () => {
    await stopCheckingModels(stack);
  });
  return control;
}

/** The fake's control for the file's stack, its faults cleared after each test; the file's jobs removed after all. */
function hooks(stack: () => Stack | undefined): () => Control {
  const control = () => fakeControl(stack()?.fakeUrl ?? '', stack()?.caFile);
  afterEach(async () => {
    await control().clearFaults();
  });
  afterAll(removeJobs);
  return control;
}
