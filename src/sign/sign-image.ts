/**
 * Signs what the job pushed with sign_with's KMS key, as `cosign sign --key` does in cosign's classic storage:
 * every digest the job reports, and every image manifest of an index among them (an attestation manifest
 * excepted). A digest this key signed already (a rerun, an image reused by skip_unchanged) is not signed again.
 * The signatures go to the image's repository, with the job's own sign-in there (src/registry/signin.ts).
 */
import type { KMSClient } from '@aws-sdk/client-kms';
import { kmsKeyRegion } from '../inputs/aws-names';
import type { Settings } from '../inputs/settings';
import { isAttestation, OCI_MANIFEST, type RegistryClient, sha256Digest } from '../registry/distribution';
import { registryClient, type SignInClients } from '../registry/signin';
import type { Output } from '../shared/console';
import { AwsStepError, RegistryError } from '../shared/errors';
import { kmsSigner, type Signer } from './kms-signer';
import { simpleSigningPayload } from './payload';
import { signatureImage, signatureLayer, signatureLayers, signatureTag, signaturesOver } from './signature-image';

export interface SignClients extends SignInClients {
  kms: (region: string) => Promise<KMSClient>;
}

/** One signed digest, as build.json records it. */
export interface ImageSignature {
  digest: string;
  /** Where the signature is stored: `<repository>:sha256-<hex>.sig`. */
  signature: string;
  /** The key's ARN (sign_with's alias resolved). */
  keyArn: string;
  /** This key had signed the digest already: nothing was added. */
  alreadySigned: boolean;
}

export interface SigningOutcome {
  /** The digests signed (or found signed) before any failure. */
  signatures: ImageSignature[];
  /** The digest that could not be signed, and why. */
  failure?: { digest: string; error: AwsStepError };
}

const REGISTRY_HINT =
  'The job pushes the signature with its own sign-in to the registry: on ECR the CI role needs ecr:BatchCheckLayerAvailability, ' +
  'ecr:InitiateLayerUpload, ecr:UploadLayerPart, ecr:CompleteLayerUpload and ecr:PutImage on the repository (infra grants them on EcrRepositories).';

/** Signs `digests` (and the image manifests of those that are indexes) with `key`, a KMS key or alias ARN. */
export async function signImage(s: Settings, key: string, digests: string[], clients: SignClients, out: Output): Promise<SigningOutcome> {
  const signatures: ImageSignature[] = [];
  let current = digests[0] ?? '';
  try {
    const kms = await clients.kms(kmsKeyRegion(key) ?? s.region);
    const signer = await kmsSigner(kms, key);
    const registry = registryClient(s, clients);
    for (const digest of await withImageManifests(registry, s.image.path, digests)) {
      current = digest;
      signatures.push(await signDigest(registry, s.image, digest, signer, out));
    }
    return { signatures };
  } catch (e) {
    // Whatever went wrong (an AWS or registry refusal, a dropped connection, a stored signature that is not JSON),
    // the image is pushed: the failure is reported as such, never as an unexpected error without reports.
    const error = !(e instanceof AwsStepError)
      ? new AwsStepError(`Signing ${s.image.name}@${current}`, e)
      : e instanceof RegistryError && !e.hint
        ? new AwsStepError(e.step, e.cause, REGISTRY_HINT)
        : e;
    return { signatures, failure: { digest: current, error } };
  }
}

/** `digests`, each followed by the image manifests it lists when it names an index; each once. */
async function withImageManifests(registry: RegistryClient, repository: string, digests: string[]): Promise<string[]> {
  const all: string[] = [];
  for (const digest of digests) {
    const manifest = await registry.manifest(repository, digest);
    all.push(digest, ...(manifest.manifests ?? []).filter((d) => !isAttestation(d)).map((d) => d.digest));
  }
  return [...new Set(all)];
}

async function signDigest(registry: RegistryClient, image: Settings['image'], digest: string, signer: Signer, out: Output): Promise<ImageSignature> {
  const tag = signatureTag(digest);
  const where = `${image.name}:${tag}`;
  const payload = simpleSigningPayload(image.name, digest);
  const stored = await registry.find(image.path, tag);
  const layers = stored ? signatureLayers(stored.bytes) : [];
  if (signaturesOver(layers, sha256Digest(payload)).some((sig) => signer.verifies(payload, sig))) {
    out.info(`Already signed: ${image.name}@${digest} with ${signer.keyArn}, in ${where}`);
    return { digest, signature: where, keyArn: signer.keyArn, alreadySigned: true };
  }
  const layer = signatureLayer(payload, await signer.sign(payload));
  const { config, manifest } = signatureImage([...layers, layer]);
  await registry.pushBlob(image.path, payload);
  await registry.pushBlob(image.path, config);
  await registry.putManifest(image.path, tag, OCI_MANIFEST, manifest);
  out.info(`Signed ${image.name}@${digest} with ${signer.keyArn}, in ${where}`);
  return { digest, signature: where, keyArn: signer.keyArn, alreadySigned: false };
}
