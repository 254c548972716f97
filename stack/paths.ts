import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Where the stack keeps its state unless told otherwise (gitignored). */
export const DEFAULT_STACK_DIR = path.join(REPO_ROOT, '.stack');

/** Debian's cosign, unpacked by scripts/ensure-deps.sh (CBI_COSIGN_DIR overrides where). */
export const COSIGN = path.join(process.env.CBI_COSIGN_DIR ?? '/opt/codebuild-image/cosign', 'bin', 'cosign');
