import { fakeControl } from '../../stack/fake-aws/control';
import type { Violation } from '../../stack/fake-aws/models/checks';

/** The error a test file fails with when its fake saw requests or answers that break AWS's models; else undefined. */
export function violationsError(violations: Violation[]): Error | undefined {
  if (violations.length === 0) return undefined;
  const counts = new Map<string, number>();
  for (const v of violations) {
    const line = `${v.kind} ${v.service}:${v.operation}${v.path ? ` at '${v.path}'` : ''}: ${v.message}`;
    counts.set(line, (counts.get(line) ?? 0) + 1);
  }
  const lines = [...counts].map(([line, n]) => `  ${line}${n > 1 ? ` (${n} times)` : ''}`);
  return new Error(`the fake AWS recorded ${violations.length} violation(s) of AWS's service models (GET /_fake/violations):\n${lines.join('\n')}`);
}

/**
 * For a file's afterAll: reads what the stack's fake recorded against AWS's models, stops the stack (whatever the
 * reading gave), then fails the file if anything was recorded.
 */
export async function stopCheckingModels(stack: { fakeUrl: string; caFile?: string; stop(): Promise<void> } | undefined): Promise<void> {
  if (!stack) return;
  let violations: Violation[];
  try {
    violations = await fakeControl(stack.fakeUrl, stack.caFile).violations();
  } finally {
    await stack.stop();
  }
  const error = violationsError(violations);
  if (error) throw error;
}
