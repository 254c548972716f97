/**
 * The stack's base image, `<registry>/busybox:stable` for linux/amd64 and linux/arm64: base images cannot be pulled
 * here, so the first stack builds it and keeps its registry storage in node_modules/.cache/stack-base-image, which
 * later stacks copy into their registries before these start. Building it (a multi-platform build whose `RUN` step
 * runs under QEMU, then a push) cost each fresh stack 1.8 CPU-seconds. Stacks that start while one builds it (a test
 * run's lanes start at once) wait for that one.
 */
import { createHash } from 'node:crypto';
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
  const args = ['buildx', 'build', '--quiet', '--network', 'host', '--provenance=false', '--platform', 'linux/amd64,linux/arm64'];
  try {
    await docker(dockerHost, [...args, '--tag', ref, '--push', context], dockerConfigDir(dir));
    keepBaseImage(storage);
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr?.trim();
    throw new Error(`building the base image ${ref} failed${stderr ? `: ${stderr}` : ''}`, { cause: e });
  } finally {
    releaseBaseImageClaim();
  }
  return ref;
}

/** How long a stack waits for another to build the base image before it builds the image itself. */
const WAIT_FOR_BUILDER_MS = 60_000;

/**
 * Copies the kept base image into a registry's storage, before the registry starts. When none is kept yet, this
 * process either claims building it (ensureBaseImage then does, and keeps it) or waits for the process that did.
 */
export async function seedBaseImage(storage: string): Promise<void> {
  if (fs.existsSync(repositoryIn(storage, REPOSITORY))) return;
  const kept = keptStorage();
  for (const end = Date.now() + WAIT_FOR_BUILDER_MS; Date.now() < end; await sleep(200)) {
    if (fs.existsSync(kept)) return void fs.cpSync(kept, storage, { recursive: true });
    if (claimBuild(kept)) return;
  }
}

/** True when this process is, or now becomes, the one building the base image (a lock file beside the kept copy). */
function claimBuild(kept: string): boolean {
  const lock = `${kept}.building`;
  fs.mkdirSync(path.dirname(lock), { recursive: true });
  try {
    fs.writeFileSync(lock, String(process.pid), { flag: 'wx' });
    return true;
  } catch {
    const holder = Number(fs.readFileSync(lock, 'utf8'));
    if (holder === process.pid) return false; // another stack of this process builds it: wait for it
    if (Number.isInteger(holder) && holder > 0 && isAlive(holder)) return false;
    fs.rmSync(lock, { force: true }); // its builder died
    return false;
  }
}

/** Gives up this process's claim to build the base image, built or not (also when its stack failed to start). */
export function releaseBaseImageClaim(): void {
  const lock = `${keptStorage()}.building`;
  try {
    if (Number(fs.readFileSync(lock, 'utf8')) === process.pid) fs.rmSync(lock, { force: true });
  } catch {
    // no claim
  }
}

/** The same base image in `target` (a registry that requires `user`) as in `source`, by digest. */
export async function sameBaseImage(source: string, target: string, user: { username: string; password: string }): Promise<boolean> {
  const [a, b] = await Promise.all([manifestDigest(source, REPOSITORY, TAG), manifestDigest(target, REPOSITORY, TAG, user)]);
  return a !== undefined && a === b;
}

/** Keeps `storage` for later stacks when it holds the base image alone (a fresh registry's, just pushed). */
function keepBaseImage(storage: string): void {
  const kept = keptStorage();
  const repositories = path.dirname(repositoryIn(storage, REPOSITORY));
  if (fs.existsSync(kept) || fs.readdirSync(repositories).join() !== REPOSITORY) return;
  // Stacks start at once: each copies under a name of its own, and the first rename wins.
  const temp = `${kept}.${process.pid}.tmp`;
  fs.cpSync(storage, temp, { recursive: true });
  try {
    fs.renameSync(temp, kept);
  } catch {
    fs.rmSync(temp, { recursive: true, force: true });
  }
}

/** The kept storage, named by what the image is made of: another busybox or Dockerfile makes another one. */
function keptStorage(): string {
  const hash = createHash('sha256').update(DOCKERFILE);
  for (const [, file] of BUSYBOXES) hash.update(`${file} ${fs.statSync(file).size} ${fs.statSync(file).mtimeMs}\n`);
  return path.join(REPO_ROOT, 'node_modules', '.cache', 'stack-base-image', hash.digest('hex').slice(0, 16));
}
