/**
 * The yaml package, loaded on first use rather than imported: setting it up takes about 6 ms and its first
 * stringify 4 more, and a job with the generated buildspec needs it only after its first output line
 * (docs/performance.md). A user's buildspec file is parsed while the inputs are read, so it loads then.
 */
import type * as Yaml from 'yaml';

let loaded: typeof Yaml | undefined;

export function yaml(): typeof Yaml {
  // A static import would run at start-up: the bundle (scripts/bundle.mjs) sets up each module it imports then.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (loaded ??= require('yaml') as typeof Yaml);
}
