/**
 * Signing with sign_with's KMS key. Its spec and public key are read once (GetPublicKey); each payload is signed as
 * a digest (Sign over its sha256), which is what `cosign verify --key` checks with that public key. A signature
 * already stored is checked here, with node:crypto, against the same public key.
 */
import { createHash, createPublicKey, type KeyObject, verify } from 'node:crypto';
import type { KMSClient, SigningAlgorithmSpec } from '@aws-sdk/client-kms';
import { AwsStepError, awsStep } from '../shared/errors';

/** The key specs taken, with the algorithm whose signatures `cosign verify --key <public key>` checks. */
const ALGORITHMS: Record<string, SigningAlgorithmSpec> = { ECC_NIST_P256: 'ECDSA_SHA_256' };
const KEY_HINT = 'sign_with must name an asymmetric KMS key with key spec ECC_NIST_P256 and key usage SIGN_VERIFY (see docs/signing.md).';

export interface Signer {
  /** The key's ARN (an alias resolved). */
  keyArn: string;
  /** The signature of `payload`, base64 (DER-encoded ECDSA), as cosign stores it. */
  sign(payload: Buffer): Promise<string>;
  /** Whether `signature` (base64) is this key's over `payload`. */
  verifies(payload: Buffer, signature: string): boolean;
}

/** The signer of `keyId` (a key or alias ARN); refuses, as a failed step, a key that cannot sign as cosign verifies. */
export async function kmsSigner(kms: KMSClient, keyId: string): Promise<Signer> {
  const { GetPublicKeyCommand, SignCommand } = await import('../aws/sdk/kms');
  const step = `Reading the public key of ${keyId}`;
  const key = await awsStep(
    step,
    () => kms.send(new GetPublicKeyCommand({ KeyId: keyId })),
    () => `The CI role needs kms:GetPublicKey on the key (infra grants it on SigningKeyArns); an alias ARN must name an alias of that account and region.`,
  );
  const algorithm = ALGORITHMS[key.KeySpec ?? ''];
  if (!algorithm || key.KeyUsage !== 'SIGN_VERIFY' || !key.SigningAlgorithms?.includes(algorithm) || !key.PublicKey || !key.KeyId) {
    const found = `the key is ${key.KeySpec ?? 'of no key spec'} for ${key.KeyUsage ?? 'no key usage'}`;
    throw new AwsStepError(step, Object.assign(new Error(found), { name: 'UnsupportedKey' }), KEY_HINT);
  }
  const keyArn = key.KeyId;
  const publicKey: KeyObject = createPublicKey({ key: Buffer.from(key.PublicKey), format: 'der', type: 'spki' });
  return {
    keyArn,
    async sign(payload) {
      const res = await awsStep(
        `Signing with ${keyArn}`,
        () => kms.send(new SignCommand({ KeyId: keyArn, Message: createHash('sha256').update(payload).digest(), MessageType: 'DIGEST', SigningAlgorithm: algorithm })),
        () => 'The CI role needs kms:Sign on the key (infra grants it on SigningKeyArns), and the key must be enabled.',
      );
      if (!res.Signature?.length) throw new AwsStepError(`Signing with ${keyArn}`, Object.assign(new Error('KMS answered without a signature'), { name: 'NoSignature' }));
      return Buffer.from(res.Signature).toString('base64');
    },
    verifies: (payload, signature) => verifiesWith(publicKey, payload, signature),
  };
}

/** Whether `signature` (base64, DER-encoded ECDSA over the sha256 of `payload`) is `publicKey`'s. */
export function verifiesWith(publicKey: KeyObject, payload: Buffer, signature: string): boolean {
  try {
    return verify('sha256', payload, { key: publicKey, dsaEncoding: 'der' }, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}
