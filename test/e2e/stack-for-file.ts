// Test set-up only: it registers vitest hooks, so the benchmarks (which import ./helpers) must not import it.
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { fakeControl } from '../../stack/fake-aws/control';
import { type Stack, type StackOptions, startStack } from '../../stack/stack';
import { stopCheckingModels } from '../helpers/violations';
import { repoRoot } from './helpers';

/**
 * One stack for a test file, in `.stack/<name>` (so files can run beside each other): started before its tests,
 * injected faults cleared after each, stopped after all, failing the file if its fake saw a request or answer
 * that breaks AWS's models. `set` receives it; the fake's control is returned.
 */
export function stackForFile(name: string, options: Omit<StackOptions, 'dir'>, set: (stack: Stack) => void): () => ReturnType<typeof fakeControl> {
  let stack: Stack | undefined;
  beforeAll(async () => {
    stack = await startStack({ dir: join(repoRoot, '.stack', name), ...options });
    set(stack);
  });
  afterEach(async () => {
    await control().clearFaults();
  });
  afterAll(async () => {
    await stopCheckingModels(stack);
  });
  const control = () => fakeControl(stack?.fakeUrl ?? '', stack?.caFile);
  return control;
}
