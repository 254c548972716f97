/**
 * Longest test files first, so no long file starts last and leaves the other workers idle. The long files' seconds
 * are written here, from a whole `npm test` run on two cores (2026-12-07, 379 s of tests): a fresh clone, as CI
 * has, runs them in the same order as a warm machine, and running one file or one test alone (which vitest's cache
 * then remembers as the file's duration) does not reorder the suite. Other files take their duration from vitest's
 * cache. Unlike vitest's own order, unit and end-to-end files share one queue: unit files fill the cores while
 * builds run.
 */
import { relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

const MEASURED_SECONDS: Record<string, number> = {
  'test/e2e/deadlines-s3.test.ts': 118,
  'test/e2e/faults.test.ts': 115,
  'test/e2e/deadlines.test.ts': 100,
  'test/unit/template.test.ts': 91,
  'test/e2e/faults-persistent.test.ts': 87,
  'test/e2e/buildkit.test.ts': 86,
  'test/e2e/stop.test.ts': 68,
  'test/e2e/registries.test.ts': 59,
  'test/e2e/build.test.ts': 52,
  'test/unit/live-tail.test.ts': 47,
  'test/e2e/stack.test.ts': 39,
  'test/e2e/proxy.test.ts': 38,
  'test/unit/buildspec.test.ts': 35,
  'test/e2e/signing.test.ts': 34,
  'test/e2e/multiarch.test.ts': 33,
  'test/unit/zip.test.ts': 32,
  'test/e2e/gitlab-ci-local.test.ts': 29,
  'test/e2e/tenants.test.ts': 27,
  'test/e2e/deadlines-signal.test.ts': 27,
  'test/unit/loud.test.ts': 26,
  'test/unit/fake-codebuild.test.ts': 22,
  'test/unit/catalog.test.ts': 20,
};

export class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const seconds = (spec: TestSpecification): number => {
      const file = relative(this.ctx.config.root, spec.moduleId);
      return MEASURED_SECONDS[file] ?? (this.ctx.cache.getFileTestResults(`${spec.project.name}:${file}`)?.duration ?? 0) / 1000;
    };
    const order = (spec: TestSpecification): number => spec.project.config.sequence.groupOrder;
    return [...files].sort((a, b) => order(a) - order(b) || seconds(b) - seconds(a));
  }
}
