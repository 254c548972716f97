/**
 * The unit-beside-load project's workers (vitest.config.ts) take only what the load test leaves of the cores: at
 * the lowest priority, they wait out its builds and run in its last half minute, when its jobs only wait on the
 * quota. Linux keeps a priority per thread: every thread the worker has (V8's, libuv's pool) gets it, and the
 * threads and processes it starts later inherit it.
 */
import { readdirSync } from 'node:fs';
import { setPriority } from 'node:os';

for (const thread of readdirSync('/proc/self/task')) setPriority(Number(thread), 19);
