/**
 * The context digest: SHA-256 over the listing (kind, mode, size, path, link target) and every file's
 * SHA-256, prefixed with the packer's format. It names the uploaded archive, and can be computed before the
 * archive exists, so the upload can stream while the archive is written. The archive is a function of exactly
 * these inputs, so the same digest means an archive with the same content: an exact content-addressed skip.
 */
import { createHash } from 'node:crypto';
import type { ContextEntry } from './listing';

/** Bump when the packer's output changes for the same input (entry layout, store/deflate rule). */
const FORMAT = 'codebuild-image zip 3';

export class ContextDigest {
  private readonly hash;

  constructor(level: number) {
    this.hash = createHash('sha256').update(`${FORMAT} deflate ${level}\n`);
  }

  /** Adds the next entry in listing order; files need the SHA-256 of their content, hex. */
  add(entry: ContextEntry, fileSha256?: string): void {
    const content = entry.kind === 'file' ? fileSha256 : entry.kind === 'symlink' ? JSON.stringify(entry.linkTarget) : '';
    if (content === undefined) throw new Error(`no content hash for ${entry.path}`);
    this.hash.update(`${entry.kind} ${entry.mode.toString(8)} ${entry.size} ${JSON.stringify(entry.path)} ${content}\n`);
  }

  hex(): string {
    return this.hash.digest('hex');
  }
}
