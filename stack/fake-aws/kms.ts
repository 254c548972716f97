import { spawn } from 'node:child_process';
import { generateKeyPairSync, randomUUID, sign, verify, type KeyObject } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { AwsError, epochSeconds } from './protocol';

/** A signing key as the stack hands it out: enough to sign with KMS and to verify offline. */
export interface SigningKeyInfo {
  /** Alias name without `alias/`. */
  alias: string;
  keyArn: string;
  aliasArn: string;
  /** Path of the public key's PEM file (SPKI), `<workDir>/kms/<alias>.pem`. */
  publicKeyPem: string;
}

interface Key extends SigningKeyInfo {
  keyId: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** PKCS#8 PEM of the private key (0600), for OpenSSL's digest signing. */
  privateKeyFile: string;
  created: Date;
}

const KEY_SPEC = 'ECC_NIST_P256';
const ALGORITHM = 'ECDSA_SHA_256';
const MAX_MESSAGE = 4096;
const DIGEST_LENGTH = 32;
const OPERATIONS = ['Sign', 'Verify', 'GetPublicKey', 'DescribeKey'];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/**
 * KMS (JSON 1.1, target `TrentService.<op>`) for asymmetric ECC_NIST_P256 SIGN_VERIFY keys made at start with
 * node:crypto: Sign and Verify with ECDSA_SHA_256 over RAW messages or SHA-256 DIGESTs, GetPublicKey and DescribeKey.
 * A key is named by key id, key ARN, `alias/<name>` or alias ARN, as in AWS.
 */
export class Kms {
  private constructor(
    private readonly keys: Key[],
    private readonly where: { region: string; account: string },
  ) {}

  /**
   * Makes one key per alias (with the given key id, or a new one) and writes its public PEM to
   * `<workDir>/kms/<alias>.pem`.
   */
  static async create(wanted: { alias: string; keyId?: string }[], where: { region: string; account: string; workDir: string }): Promise<Kms> {
    const keys: Key[] = [];
    for (const { alias, keyId = randomUUID() } of wanted) {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const base = join(where.workDir, 'kms', alias);
      const key: Key = {
        alias,
        keyId,
        keyArn: `arn:aws:kms:${where.region}:${where.account}:key/${keyId}`,
        aliasArn: `arn:aws:kms:${where.region}:${where.account}:alias/${alias}`,
        publicKeyPem: `${base}.pem`,
        privateKeyFile: `${base}.key`,
        privateKey,
        publicKey,
        created: new Date(),
      };
      await mkdir(dirname(base), { recursive: true });
      await writeFile(key.publicKeyPem, publicKey.export({ type: 'spki', format: 'pem' }));
      await writeFile(key.privateKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      keys.push(key);
    }
    return new Kms(keys, where);
  }

  get signingKeys(): SigningKeyInfo[] {
    return this.keys.map(({ alias, keyArn, aliasArn, publicKeyPem }) => ({ alias, keyArn, aliasArn, publicKeyPem }));
  }

  async handle(operation: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    if (!OPERATIONS.includes(operation)) {
      throw new AwsError('UnknownOperationException', `Operation ${operation} is not supported by the fake KMS (${OPERATIONS.join(', ')}).`);
    }
    const key = this.find(body.KeyId);
    const described = { KeySpec: KEY_SPEC, CustomerMasterKeySpec: KEY_SPEC, KeyUsage: 'SIGN_VERIFY', SigningAlgorithms: [ALGORITHM] };
    switch (operation) {
      case 'GetPublicKey':
        return { KeyId: key.keyArn, PublicKey: key.publicKey.export({ type: 'spki', format: 'der' }).toString('base64'), ...described };
      case 'DescribeKey':
        return {
          KeyMetadata: {
            AWSAccountId: this.where.account,
            KeyId: key.keyId,
            Arn: key.keyArn,
            CreationDate: epochSeconds(key.created),
            Enabled: true,
            Description: '',
            KeyState: 'Enabled',
            Origin: 'AWS_KMS',
            KeyManager: 'CUSTOMER',
            MultiRegion: false,
            ...described,
          },
        };
      case 'Sign': {
        const message = signedMessage(body);
        const signature = message.digest ? await openssl(['-sign', '-inkey', key.privateKeyFile], message.bytes) : sign('sha256', message.bytes, key.privateKey);
        if (!signature) throw new AwsError('KMSInternalException', 'The fake KMS could not sign the digest (openssl pkeyutl failed).', 500);
        return { KeyId: key.keyArn, Signature: signature.toString('base64'), SigningAlgorithm: ALGORITHM };
      }
      default: {
        // Verify
        const message = signedMessage(body);
        const signature = blob(body.Signature, 'signature');
        const valid = message.digest ? await this.verifyDigest(key, message.bytes, signature) : verify('sha256', message.bytes, key.publicKey, signature);
        // AWS answers a bad signature with this error and no message, never with SignatureValid: false.
        if (!valid) throw new AwsError('KMSInvalidSignatureException', '');
        return { KeyId: key.keyArn, SignatureValid: true, SigningAlgorithm: ALGORITHM };
      }
    }
  }

  /** The key a request's KeyId names (key id, key ARN, alias or alias ARN), or KMS's NotFoundException. */
  keyFor(id: unknown): SigningKeyInfo {
    return this.find(id);
  }

  private find(id: unknown): Key {
    if (typeof id !== 'string' || id === '') throw new AwsError('ValidationException', "1 validation error detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null");
    const arnPrefix = `arn:aws:kms:${this.where.region}:${this.where.account}:`;
    const local = id.startsWith(arnPrefix) ? id.slice(arnPrefix.length) : id;
    const keyId = local.startsWith('key/') ? local.slice('key/'.length) : local;
    const found = this.keys.find((k) => local === `alias/${k.alias}` || keyId === k.keyId);
    if (found) return found;
    if (local.startsWith('alias/')) throw new AwsError('NotFoundException', `Alias ${arnPrefix}${local} is not found.`);
    if (!UUID.test(keyId)) throw new AwsError('NotFoundException', `Invalid keyId '${id}'`);
    throw new AwsError('NotFoundException', `Key '${arnPrefix}key/${keyId}' does not exist`);
  }

  private async verifyDigest(key: Key, digest: Buffer, signature: Buffer): Promise<boolean> {
    const signatureFile = join(dirname(key.privateKeyFile), `.verify-${randomUUID()}.sig`);
    await writeFile(signatureFile, signature);
    try {
      return (await openssl(['-verify', '-pubin', '-inkey', key.publicKeyPem, '-sigfile', signatureFile], digest)) !== undefined;
    } finally {
      await rm(signatureFile, { force: true });
    }
  }
}

/** Sign's and Verify's Message, MessageType and SigningAlgorithm, checked as KMS checks them for this key. */
function signedMessage(body: Record<string, unknown>): { bytes: Buffer; digest: boolean } {
  const algorithm = body.SigningAlgorithm;
  if (typeof algorithm !== 'string') throw new AwsError('ValidationException', "1 validation error detected: Value null at 'signingAlgorithm' failed to satisfy constraint: Member must not be null");
  if (algorithm !== ALGORITHM) throw new AwsError('InvalidKeyUsageException', `Algorithm ${algorithm} is incompatible with key spec ${KEY_SPEC}.`);
  const bytes = blob(body.Message, 'message');
  if (bytes.length > MAX_MESSAGE) {
    throw new AwsError('ValidationException', `1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length less than or equal to ${MAX_MESSAGE}`);
  }
  const type = body.MessageType ?? 'RAW';
  if (type === 'RAW') return { bytes, digest: false };
  if (type !== 'DIGEST') throw new AwsError('ValidationException', `Message type ${String(type)} is incompatible with algorithm ${ALGORITHM}.`);
  if (bytes.length !== DIGEST_LENGTH) throw new AwsError('ValidationException', `Digest is invalid length for algorithm ${ALGORITHM}.`);
  return { bytes, digest: true };
}

/** A JSON blob member (base64), at least one byte long as the model requires. */
function blob(value: unknown, member: string): Buffer {
  if (value === undefined || value === null) throw new AwsError('ValidationException', `1 validation error detected: Value null at '${member}' failed to satisfy constraint: Member must not be null`);
  const bytes = typeof value === 'string' ? Buffer.from(value, 'base64') : Buffer.alloc(0);
  if (bytes.length === 0) throw new AwsError('ValidationException', `1 validation error detected: Value at '${member}' failed to satisfy constraint: Member must have length greater than or equal to 1`);
  return bytes;
}

/**
 * `openssl pkeyutl ARGS` with `input` on stdin: its stdout, or undefined when it exits non-zero (for -verify, a
 * signature that does not match). node:crypto always hashes what it signs, so a DIGEST is signed by OpenSSL's
 * pkeyutl, which runs ECDSA on its input as given.
 */
function openssl(args: string[], input: Buffer): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const child = spawn('openssl', ['pkeyutl', ...args], { stdio: ['pipe', 'pipe', 'ignore'] });
    const out: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
    child.on('error', (e) => reject(new Error(`fake KMS: cannot run openssl (install Debian's openssl): ${e.message}`)));
    child.on('close', (code) => resolve(code === 0 ? Buffer.concat(out) : undefined));
    child.stdin.end(input);
  });
}
