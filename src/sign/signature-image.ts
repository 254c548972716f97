/**
 * cosign's classic storage of signatures, which `cosign verify --key` reads: beside the signed digest, an OCI image
 * manifest under the tag `sha256-<hex>.sig` with one layer per signature (the payload blob, its signature in an
 * annotation) and a config listing the layers, as cosign writes it. A new signature is appended to the layers
 * already there, which are kept as they are (other keys', other tools' annotations).
 */
import { type Descriptor, OCI_MANIFEST, sha256Digest } from '../registry/distribution';
import { SIMPLE_SIGNING } from './payload';

export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
const OCI_CONFIG = 'application/vnd.oci.image.config.v1+json';
/** Go's zero time, which cosign writes as every creation time. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

/** The tag that holds the signatures of `digest`: `sha256-<hex>.sig`. */
export function signatureTag(digest: string): string {
  return `${digest.replace(':', '-')}.sig`;
}

/** The layers of a stored signature manifest. */
export function signatureLayers(manifest: Buffer): Descriptor[] {
  const doc = JSON.parse(manifest.toString('utf8')) as { layers?: unknown };
  return Array.isArray(doc.layers) ? (doc.layers as Descriptor[]) : [];
}

/** The signatures (base64) that `layers` hold over the payload blob `payloadDigest`. */
export function signaturesOver(layers: Descriptor[], payloadDigest: string): string[] {
  return layers.flatMap((l) => {
    const signature = l.annotations?.[SIGNATURE_ANNOTATION];
    return l.mediaType === SIMPLE_SIGNING && l.digest === payloadDigest && signature ? [signature] : [];
  });
}

/** The layer of one signature: the payload blob, with the signature (base64) as its annotation. */
export function signatureLayer(payload: Buffer, signature: string): Descriptor {
  return { mediaType: SIMPLE_SIGNING, size: payload.length, digest: sha256Digest(payload), annotations: { [SIGNATURE_ANNOTATION]: signature } };
}

/** The config blob and manifest that hold `layers`, as cosign writes them. */
export function signatureImage(layers: Descriptor[]): { config: Buffer; manifest: Buffer } {
  const config = Buffer.from(
    JSON.stringify({
      architecture: '',
      created: ZERO_TIME,
      history: layers.map(() => ({ created: ZERO_TIME })),
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
  const manifest = {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, size: config.length, digest: sha256Digest(config) },
    layers,
  };
  return { config, manifest: Buffer.from(JSON.stringify(manifest)) };
}
