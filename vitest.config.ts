import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'infra/**/*.test.ts'],
          testTimeout: 60_000,
          // vitest's default on 2 cores is 1: the files spend much of their time waiting on servers and processes.
          maxWorkers: 2,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 600_000,
          hookTimeout: 600_000,
          // Two lanes, each with its own stack that its files share one after another (test/e2e/lanes.ts).
          maxWorkers: 2,
          globalSetup: ['test/e2e/lanes.ts'],
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
