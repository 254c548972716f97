/**
 * The stack's base image, `<registry>/busybox:stable` for linux/amd64 and linux/arm64: base images cannot be pulled
 * here, so the first stack builds it and keeps its registry storage in node_modules/.cache/stack-base-image, which
 * later stacks copy into their registries before these start. Building it (a multi-platform build whose `RUN` step
 * runs under QEMU, then a push) cost each fresh stack 1.8 CPU-seconds. Stacks that start while one builds it (a test
 * run's lanes start at once) wait for that one.
 */
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { docker, dockerConfigDir } from './docker';
import { REPO_ROOT } from './paths';
import { isAlive, sleep } from './process';
import { manifestDigest, platformManifests } from './registry';

const REPOSITORY = 'busybox';
const TAG = 'stable';

/** Debian's arm64 busybox-static, unpacked by scripts/ensure-deps.sh for the arm64 half of the base image. */
const ARM64_BUSYBOX = process.env.CBI_ARM64_BUSYBOX ?? '/opt/codebuild-image/arm64/busybox';
const BUSYBOXES = [['amd64', '/bin/busybox'], ['arm64', ARM64_BUSYBOX]] as const;
const BUILD_ARGS = ['buildx', 'build', '--quiet', '--network', 'host', '--provenance=false', '--platform', 'linux/amd64,linux/arm64'];
const DOCKERFILE = ['FROM scratch', 'ARG TARGETARCH', 'COPY ${TARGETARCH}/busybox /bin/busybox', 'RUN ["/bin/busybox", "--install", "-s", "/bin"]', ''].join('\n');

/** Where distribution's filesystem driver keeps a repository, under its storage root. */
const repositoryIn = (storage: string, name: string) => path.join(storage, 'docker', 'registry', 'v2', 'repositories', name);

/**
 * Makes the base image available in `registry` (its storage at `storage`), unless it is there already (copied in by
 * seedBaseImage, or left in the state dir by an earlier stack). Returns the image reference.
 */
export async function ensureBaseImage(dir: string, dockerHost: string, registry: string, storage: string): Promise<string> {
  const ref = `${registry}/${REPOSITORY}:${TAG}`;
  if (await manifestDigest(registry, REPOSITORY, TAG)) {
    const platforms = (await platformManifests(registry, REPOSITORY, TAG)).map((m) => m.platform);
    if (platforms.includes('linux/arm64')) return ref; // else a state dir from before arm64: build it again
  }
  const context = path.join(dir, 'base-image');
  for (const [arch, busybox] of BUSYBOXES) {
    fs.mkdirSync(path.join(context, arch), { recursive: true });
    fs.copyFileSync(busybox, path.join(context, arch, 'busybox'));
  }
  fs.writeFileSync(path.join(context, 'Dockerfile'), DOCKERFILE);
  try {
    await docker(dockerHost, [...BUILD_ARGS, '--tag', ref, '--push', context], dockerConfigDir(dir));
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr?.trim();
    throw new Error(`building the base image ${ref} failed${stderr ? `: ${stderr}` : ''}`, { cause: e });
  }
  keepBaseImage(storage);
  return ref;
}

/** A stack's claim to build the base image (a lock file beside the kept copy), given up once its start is over. */
export interface BuildClaim {
  release(): void;
}

/** Where the kept copy lives, and how long a stack waits for another's build before it builds the image itself. */
export interface KeptOptions {
  dir?: string;
  waitMs?: number;
  pollMs?: number;
}

/**
 * Copies the kept base image into a registry's storage, before the registry starts. When none is kept yet, this stack
 * either claims building it (returned: ensureBaseImage builds and keeps it, and the stack gives the claim up once its
 * start is over) or waits for the stack that claimed it; after `waitMs` it builds the image itself, unclaimed.
 */
export async function seedBaseImage(storage: string, opts: KeptOptions = {}): Promise<BuildClaim | undefined> {
  if (fs.existsSync(repositoryIn(storage, REPOSITORY))) return undefined;
  const kept = keptStorage(opts.dir);
  const end = Date.now() + (opts.waitMs ?? 60_000);
  for (;;) {
    if (fs.existsSync(kept)) {
      copyInto(kept, storage);
      return undefined;
    }
    const claim = claimBuild(`${kept}.building`);
    if (claim || Date.now() >= end) return claim;
    await sleep(opts.pollMs ?? 200);
  }
}

/** The claim, when no live stack holds the lock (`<pid> <token>`); undefined while one does. */
function claimBuild(lock: string): BuildClaim | undefined {
  const mine = `${process.pid} ${randomUUID()}`;
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  try {
    fs.writeFileSync(lock, mine, { flag: 'wx' });
  } catch {
    if (holderGone(lock)) fs.rmSync(lock, { force: true });
    return undefined;
  }
  return {
    release: () => {
      if (read(lock) === mine) fs.rmSync(lock, { force: true });
    },
  };
}

/** The lock's holder exited (or a holder died between creating it and writing its pid, ten seconds ago or more). */
function holderGone(lock: string): boolean {
  const pid = Number(read(lock)?.split(' ')[0]);
  if (Number.isInteger(pid) && pid > 0) return !isAlive(pid);
  try {
    return Date.now() - fs.statSync(lock).mtimeMs > 10_000;
  } catch {
    return false; // released meanwhile: the next round sees
  }
}

function read(file: string): string | undefined {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Copies `from` to a storage root that does not hold the image, whole or not at all when it is new. */
function copyInto(from: string, storage: string): void {
  if (fs.existsSync(storage)) return void fs.cpSync(from, storage, { recursive: true });
  copyWhole(from, storage);
}

/** Copies `from` to `to` under a name of its own, then renames it into place; the first rename wins, the others go. */
function copyWhole(from: string, to: string): void {
  const temp = `${to}.${process.pid}.tmp`;
  fs.rmSync(temp, { recursive: true, force: true });
  fs.cpSync(from, temp, { recursive: true });
  try {
    fs.renameSync(temp, to);
  } catch {
    fs.rmSync(temp, { recursive: true, force: true });
  }
}

/** The same base image in `target` (a registry that requires `user`) as in `source`, by digest. */
export async function sameBaseImage(source: string, target: string, user: { username: string; password: string }): Promise<boolean> {
  const [a, b] = await Promise.all([manifestDigest(source, REPOSITORY, TAG), manifestDigest(target, REPOSITORY, TAG, user)]);
  return a !== undefined && a === b;
}

/** Keeps `storage` for later stacks when it holds the base image alone (a fresh registry's, just pushed). */
export function keepBaseImage(storage: string, opts: KeptOptions = {}): void {
  const kept = keptStorage(opts.dir);
  const repositories = path.dirname(repositoryIn(storage, REPOSITORY));
  if (fs.existsSync(kept) || fs.readdirSync(repositories).join() !== REPOSITORY) return;
  copyWhole(storage, kept); // stacks start at once
}

/** The kept storage, named by what the image is made of: other busyboxes, Dockerfile or build arguments make another. */
function keptStorage(dir = path.join(REPO_ROOT, 'node_modules', '.cache', 'stack-base-image')): string {
  const hash = createHash('sha256').update(DOCKERFILE).update(BUILD_ARGS.join(' '));
  for (const [, file] of BUSYBOXES) {
    const { size, mtimeMs } = fs.statSync(file);
    hash.update(`${file} ${size} ${mtimeMs}\n`);
  }
  return path.join(dir, hash.digest('hex').slice(0, 16));
}
