import { defineConfig } from 'vitest/config';
import { LongestFirst } from './test/sequencer';

/**
 * Files run this many at a time, unit and end-to-end together (the same number for both puts them in one queue,
 * longest first: test/sequencer.ts): the end-to-end files spend most of their time waiting on builds, and the unit
 * files fill the cores meanwhile. Each worker is an end-to-end lane with a stack of its own (test/e2e/lanes.ts).
 */
const WORKERS = 5;

const LOAD = 'test/e2e/load.test.ts';

export default defineConfig({
  test: {
    sequence: { sequencer: LongestFirst },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'infra/**/*.test.ts'],
          // A worker loads the modules once for all its files, not once per file (a quarter of the unit files' CPU);
          // test/helpers/file-env.ts puts the environment back after each file.
          isolate: false,
          setupFiles: ['test/helpers/file-env.ts'],
          testTimeout: 60_000,
          // Clean-ups too (zip.test.ts removes 70,000 files): the cores are shared with the end-to-end lanes.
          hookTimeout: 60_000,
          maxWorkers: WORKERS,
          sequence: { groupOrder: 0 },
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          exclude: ['**/node_modules/**', LOAD],
          // As the unit files: a worker loads the stack's modules and the AWS SDK once for the files of its lane
          // that follow one another in the queue, not once per file (about 1 CPU-second a file). No e2e module keeps
          // state that matters to a later file (a job counter, the program's copy): each file reads its lane's stack back
          // from .stack/ (lanes.ts), and test/helpers/file-env.ts puts the environment back.
          isolate: false,
          setupFiles: ['test/helpers/file-env.ts'],
          testTimeout: 600_000,
          hookTimeout: 600_000,
          maxWorkers: WORKERS,
          globalSetup: ['test/e2e/lanes.ts'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        // Fifty jobs at once fill both cores, however low their priority (each of a hundred processes gets its
        // share): run after everything else, so no other file's deadlines feel it.
        test: {
          name: 'e2e-load',
          include: [LOAD],
          testTimeout: 600_000,
          hookTimeout: 600_000,
          maxWorkers: 1,
          globalSetup: ['test/e2e/lanes.ts'],
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
