import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { keepBaseImage, seedBaseImage } from '../../stack/base-image';
import { tempDirs } from '../helpers/temp-dirs';

const tempDir = tempDirs('cbi-base-image-');

const repository = (storage: string) => path.join(storage, 'docker', 'registry', 'v2', 'repositories', 'busybox');

/** A registry storage root holding the base image alone (a manifest link and a blob stand for it). */
function builtStorage(root: string): string {
  const storage = path.join(root, 'built');
  fs.mkdirSync(path.join(repository(storage), '_manifests'), { recursive: true });
  fs.writeFileSync(path.join(repository(storage), '_manifests', 'link'), 'sha256:ab');
  fs.mkdirSync(path.join(storage, 'docker', 'registry', 'v2', 'blobs'), { recursive: true });
  fs.writeFileSync(path.join(storage, 'docker', 'registry', 'v2', 'blobs', 'data'), 'layer');
  return storage;
}

describe('the kept base image', () => {
  it('is copied whole into a new registry storage, and not into one that has the image', async () => {
    const root = tempDir();
    const kept = { dir: path.join(root, 'kept') };
    keepBaseImage(builtStorage(root), kept);

    const fresh = path.join(root, 'fresh');
    expect(await seedBaseImage(fresh, kept)).toBeUndefined();
    expect(fs.readFileSync(path.join(repository(fresh), '_manifests', 'link'), 'utf8')).toBe('sha256:ab');
    expect(fs.readFileSync(path.join(fresh, 'docker', 'registry', 'v2', 'blobs', 'data'), 'utf8')).toBe('layer');

    fs.writeFileSync(path.join(repository(fresh), '_manifests', 'link'), 'sha256:cd');
    expect(await seedBaseImage(fresh, kept)).toBeUndefined();
    expect(fs.readFileSync(path.join(repository(fresh), '_manifests', 'link'), 'utf8')).toBe('sha256:cd');
  });

  it('is not kept from a storage that holds other repositories too', async () => {
    const root = tempDir();
    const storage = builtStorage(root);
    fs.mkdirSync(path.join(repository(storage), '..', 'group', 'app'), { recursive: true });
    const kept = { dir: path.join(root, 'kept') };
    keepBaseImage(storage, kept);
    const claim = await seedBaseImage(path.join(root, 'fresh'), { ...kept, waitMs: 0 });
    expect(claim).toBeDefined(); // nothing kept: this stack builds it
    claim?.release();
  });

  it('none kept: one stack claims the build, another waits for its copy and takes it', async () => {
    const root = tempDir();
    const kept = { dir: path.join(root, 'kept'), pollMs: 20 };
    const builder = await seedBaseImage(path.join(root, 'a'), kept);
    expect(builder).toBeDefined();

    const waiter = seedBaseImage(path.join(root, 'b'), kept);
    await new Promise((resolve) => setTimeout(resolve, 100));
    keepBaseImage(builtStorage(root), kept);
    builder?.release();
    expect(await waiter).toBeUndefined();
    expect(fs.existsSync(repository(path.join(root, 'b')))).toBe(true);
  });

  it('a claim given up without a copy passes to a waiting stack', async () => {
    const root = tempDir();
    const kept = { dir: path.join(root, 'kept'), pollMs: 20 };
    const first = await seedBaseImage(path.join(root, 'a'), kept);
    const second = seedBaseImage(path.join(root, 'b'), kept);
    await new Promise((resolve) => setTimeout(resolve, 100));
    first?.release();
    const claim = await second;
    expect(claim).toBeDefined();
    claim?.release();
  });

  it("takes over the claim of a process that exited, and stops waiting on a live one after waitMs", async () => {
    const root = tempDir();
    const kept = { dir: path.join(root, 'kept'), pollMs: 20 };
    const held = await seedBaseImage(path.join(root, 'a'), kept);
    const [lock] = fs.readdirSync(kept.dir).filter((f) => f.endsWith('.building'));
    const lockFile = path.join(kept.dir, lock ?? '');
    expect(fs.readFileSync(lockFile, 'utf8')).toMatch(new RegExp(`^${process.pid} `));

    // A live holder (this process): no claim, no copy once waitMs is over.
    expect(await seedBaseImage(path.join(root, 'b'), { ...kept, waitMs: 100 })).toBeUndefined();
    expect(fs.existsSync(repository(path.join(root, 'b')))).toBe(false);

    const exited = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' }).stdout;
    fs.writeFileSync(lockFile, `${exited} token`);
    const claim = await seedBaseImage(path.join(root, 'c'), { ...kept, waitMs: 1_000 });
    expect(claim).toBeDefined();
    held?.release(); // no longer its lock: left alone
    expect(fs.readFileSync(lockFile, 'utf8')).not.toMatch(/ token$/);
    claim?.release();
    expect(fs.existsSync(lockFile)).toBe(false);
  });
});
