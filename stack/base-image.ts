/**
 * The stack's base image, `<registry>/busybox:stable` for linux/amd64 and linux/arm64: base images cannot be pulled
 * here, so the first stack builds it and keeps its registry storage in node_modules/.cache/stack-base-image, which
 * later stacks copy into their registries before these start. Building it (a multi-platform build whose `RUN` step
 * runs under QEMU, then a push) cost each fresh stack 1.8 CPU-seconds.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { docker, dockerConfigDir } from './docker';
import { REPO_ROOT } from './paths';
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
  } catch (e) {
    const stderr = (e as { stderr?: string }).stderr?.trim();
    throw new Error(`building the base image ${ref} failed${stderr ? `: ${stderr}` : ''}`, { cause: e });
  }
  keepBaseImage(storage);
  return ref;
}

/** Copies the kept base image into a registry's storage, before the registry starts; false when none is kept yet. */
export function seedBaseImage(storage: string): boolean {
  const kept = keptStorage();
  if (fs.existsSync(repositoryIn(storage, REPOSITORY)) || !fs.existsSync(kept)) return false;
  fs.cpSync(kept, storage, { recursive: true });
  return true;
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
