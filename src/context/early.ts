/**
 * Packing that starts as soon as the context is named, while the job signs in to AWS and asks S3 whether the
 * archive is there already (HeadObject): up to `ahead` bytes of archive wait here, copied, for the upload,
 * then packing waits too. An archive that is not needed after all (unchanged context, reused image, an AWS
 * error) is cancelled, and no byte of it has left the machine.
 */
import type { Archive, ArchiveTarget } from './zip';

export class EarlyPacking {
  private readonly held: Buffer[] = [];
  private heldBytes = 0;
  private target: ArchiveTarget | undefined;
  private resume: (() => void) | undefined;
  private cancelled = false;
  private readonly archive: Promise<Archive>;

  constructor(
    pack: (target: ArchiveTarget) => Promise<Archive>,
    private readonly ahead: number,
  ) {
    this.archive = pack({ write: (buffers) => this.take(buffers) });
    this.archive.catch(() => undefined); // surfaced by write(), or not wanted after cancel()
  }

  /** The archive into `target` (once): what was packed already, then the rest as it is packed. */
  async write(target: ArchiveTarget): Promise<Archive> {
    while (this.held.length > 0) {
      const buffers = this.held.splice(0);
      this.heldBytes = 0;
      await target.write(buffers);
    }
    this.target = target;
    this.resume?.();
    return this.archive;
  }

  /** Stops packing (the archive is not needed) and waits until it has stopped. */
  async cancel(): Promise<void> {
    this.cancelled = true;
    this.resume?.();
    await this.archive.catch(() => undefined);
  }

  private async take(buffers: Buffer[]): Promise<void> {
    if (this.cancelled) throw new Error('The archive is not needed.');
    if (this.target) return this.target.write(buffers);
    // Copied: the packer reuses its buffers once this returns.
    const copy = Buffer.concat(buffers);
    this.held.push(copy);
    this.heldBytes += copy.length;
    if (this.heldBytes >= this.ahead) await new Promise<void>((resolve) => (this.resume = resolve));
    if (this.cancelled) throw new Error('The archive is not needed.');
  }
}
