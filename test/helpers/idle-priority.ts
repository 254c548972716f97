/**
 * The unit-beside-load project's workers (vitest.config.ts) take only what the load test leaves of the cores: at
 * the lowest priority, they wait out its builds and run in its last half minute, when its jobs only wait on the
 * quota. Threads and processes they start later inherit the priority.
 */
import { setPriority } from 'node:os';

setPriority(19);
