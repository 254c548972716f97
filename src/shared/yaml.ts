/**
 * The yaml package, loaded on first use: the bundle (scripts/bundle.mjs) sets up every module imported statically
 * at start-up, and setting yaml up takes about 6 ms and its first stringify 4 more, while a job with the generated
 * buildspec needs it only well after its first output line (docs/performance.md). A user's buildspec file is
 * parsed while the inputs are read, so it loads then.
 */
import type * as Yaml from 'yaml';

let loaded: typeof Yaml | undefined;

export function yaml(): typeof Yaml {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (loaded ??= require('yaml') as typeof Yaml);
}
