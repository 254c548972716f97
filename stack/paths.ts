import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Where the stack keeps its state unless told otherwise (gitignored). */
export const DEFAULT_STACK_DIR = path.join(REPO_ROOT, '.stack');
