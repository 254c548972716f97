import { defineConfig } from 'vitest/config';
import { LongestFirst } from './test/sequencer';

/**
 * Files run this many at a time, unit and end-to-end together (the same number for both puts them in one queue,
 * longest first: test/sequencer.ts). The end-to-end files spend most of their time waiting on builds and deadlines
 * (the four longest, which start first, wait out deadlines for about two minutes), so there are more workers than
 * cores: with five, those four left one worker to keep two cores busy, and the machine idled for a tenth of its
 * first two minutes. Each worker is an end-to-end lane with a stack of its own (test/e2e/lanes.ts).
 */
const WORKERS = 7;

const LOAD = 'test/e2e/load.test.ts';
/**
 * Unit files that run beside the load test rather than before it, at the lowest CPU priority
 * (test/helpers/idle-priority.ts). Its fifty jobs and their builds take both cores for a minute, and then only wait
 * on the account-wide quota for half a minute or so: these files wait out the first part and fill the cores in the
 * second. So their timeouts are long, and none of them times how long something takes or starts a process with a
 * kill timer of its own (as gitlab-ci-local's runs have); upload.test.ts's requests have deadlines, which the SDK
 * retries. Runs without the load test (CBI_UNIT_ONLY=1: `npm run test:unit`, `npm test -- unit`) keep them in the
 * unit project.
 */
const BESIDE_LOAD = process.env.CBI_UNIT_ONLY
  ? []
  : ['test/unit/zip.test.ts', 'test/unit/buildspec.test.ts', 'test/unit/upload.test.ts'];
/** The load test's group: one worker for it and one for each file beside it (vitest wants one number per group). */
const LOAD_GROUP_WORKERS = 1 + BESIDE_LOAD.length;

/** Both unit projects: a worker loads the modules once for all its files, not once per file (a quarter of their CPU). */
const UNIT = {
  isolate: false,
  // test/helpers/file-env.ts puts the environment back after each file.
  setupFiles: ['test/helpers/file-env.ts'],
  testTimeout: 60_000,
  // Clean-ups too (zip.test.ts removes 70,000 files, when it runs here): the cores are shared with the end-to-end lanes.
  hookTimeout: 60_000,
};

const BESIDE_LOAD_PROJECT = {
  test: {
    ...UNIT,
    name: 'unit-beside-load',
    include: BESIDE_LOAD,
    setupFiles: [...UNIT.setupFiles, 'test/helpers/idle-priority.ts'],
    testTimeout: 300_000,
    hookTimeout: 300_000,
    maxWorkers: LOAD_GROUP_WORKERS,
    sequence: { groupOrder: 1 },
  },
};

export default defineConfig({
  test: {
    sequence: { sequencer: LongestFirst },
    projects: [
      {
        test: {
          ...UNIT,
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'infra/**/*.test.ts'],
          exclude: ['**/node_modules/**', ...BESIDE_LOAD],
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
          maxWorkers: LOAD_GROUP_WORKERS,
          globalSetup: ['test/e2e/lanes.ts'],
          sequence: { groupOrder: 1 },
        },
      },
      ...(BESIDE_LOAD.length ? [BESIDE_LOAD_PROJECT] : []),
    ],
  },
});
