/**
 * cosign's "simple signing" payload: the bytes a signature of an image signs. These are exactly the bytes cosign
 * 3.1.1 writes for `cosign sign --key` in its classic storage (Go's encoding/json, keys in this order), so a
 * payload this job signed and one cosign signed for the same image are one blob. `cosign verify` checks that
 * `docker-manifest-digest` is the digest it was asked about.
 */
export const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';

/** The payload that says `repository` (`registry/path`, no tag) at `digest` is signed. */
export function simpleSigningPayload(repository: string, digest: string): Buffer {
  const payload = {
    critical: {
      identity: { 'docker-reference': repository },
      image: { 'docker-manifest-digest': digest },
      type: 'cosign container image signature',
    },
    optional: null,
  };
  return Buffer.from(JSON.stringify(payload));
}
