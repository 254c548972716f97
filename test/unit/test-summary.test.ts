import { describe, expect, it } from 'vitest';
import { summary } from '../../scripts/test-summary.mjs';

const test = (fullName: string, duration: number | null) => ({ fullName, duration });

describe('the closing lines of npm test', () => {
  it('gives the counts, then the ten slowest tests, slowest first, with seconds and files', () => {
    const lines = summary(
      {
        numPassedTests: 12,
        numFailedTests: 1,
        numPendingTests: 2,
        numTodoTests: 1,
        testResults: [
          { name: '/repo/test/e2e/a.test.ts', assertionResults: Array.from({ length: 8 }, (_, i) => test(`a ${i}`, 1000 * i)) },
          { name: '/repo/test/unit/b.test.ts', assertionResults: [test('b slow', 61_250), test('b fast', 3), test('b skipped', null), test('b mid', 2500)] },
        ],
      },
      '/repo',
    );
    expect(lines).toEqual([
      'tests: 12 passed, 1 failed, 3 skipped',
      '10 slowest:',
      '   61.3 s  test/unit/b.test.ts  b slow',
      '    7.0 s  test/e2e/a.test.ts  a 7',
      '    6.0 s  test/e2e/a.test.ts  a 6',
      '    5.0 s  test/e2e/a.test.ts  a 5',
      '    4.0 s  test/e2e/a.test.ts  a 4',
      '    3.0 s  test/e2e/a.test.ts  a 3',
      '    2.5 s  test/unit/b.test.ts  b mid',
      '    2.0 s  test/e2e/a.test.ts  a 2',
      '    1.0 s  test/e2e/a.test.ts  a 1',
      '    0.0 s  test/unit/b.test.ts  b fast',
    ]);
  });

  it('lists no slowest tests when none ran', () => {
    expect(summary({ numPassedTests: 0, numFailedTests: 0, numPendingTests: 0, numTodoTests: 0, testResults: [] })).toEqual([
      'tests: 0 passed, 0 failed, 0 skipped',
    ]);
  });
});
