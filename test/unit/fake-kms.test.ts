// The fake's KMS, reached with the real SDK client through AWS_ENDPOINT_URL_KMS: real ECDSA P-256 signatures that
// node:crypto and cosign verify with the public PEM the fake writes, keys named as AWS names them, and KMS's errors.
import { execFile } from 'node:child_process';
import { createHash, createPublicKey, verify } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DescribeKeyCommand, GetPublicKeyCommand, KMSClient, SignCommand, VerifyCommand, type SignCommandInput } from '@aws-sdk/client-kms';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { resolveOptions } from '../../stack/fake-aws/options';
import { COSIGN } from '../../stack/paths';
import { startFakeAws, type SigningKeyInfo } from '../../stack/fake-aws/server';
import { startStack, STATIC_CREDENTIALS, type Stack } from './fake-support';


let stack: Stack;
let kms: KMSClient;
let key: SigningKeyInfo;
beforeAll(async () => {
  stack = await startStack();
  kms = new KMSClient({ credentials: STATIC_CREDENTIALS, maxAttempts: 1 });
  key = stack.fake.signingKeys[0] as SigningKeyInfo;
});
afterAll(async () => {
  await stack?.stop();
});

/** The error name the SDK raised, or 'no error'. */
const failure = (p: Promise<unknown>) => p.then(() => 'no error', (e: Error) => e.name);
const signed = async (input: Omit<SignCommandInput, 'SigningAlgorithm'>) =>
  Buffer.from((await kms.send(new SignCommand({ SigningAlgorithm: 'ECDSA_SHA_256', ...input }))).Signature ?? []);
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest();
const pem = () => readFileSync(key.publicKeyPem, 'utf8');

describe('fake KMS keys', () => {
  it('makes the default key, with ARNs in the configured account and region and its public PEM in <workDir>/kms', async () => {
    expect(stack.fake.signingKeys).toHaveLength(1);
    expect(key.alias).toBe('codebuild-image-signing');
    expect(key.keyArn).toMatch(/^arn:aws:kms:us-east-1:000000000000:key\/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(key.aliasArn).toBe('arn:aws:kms:us-east-1:000000000000:alias/codebuild-image-signing');
    expect(key.publicKeyPem).toBe(join(stack.workDir, 'kms', 'codebuild-image-signing.pem'));
    expect(pem()).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    expect(statSync(join(stack.workDir, 'kms', 'codebuild-image-signing.key')).mode & 0o077).toBe(0);
  });

  it('GetPublicKey returns the PEM file as SPKI DER, with the key spec, usage and algorithm', async () => {
    const answer = await kms.send(new GetPublicKeyCommand({ KeyId: 'alias/codebuild-image-signing' }));
    expect(answer).toMatchObject({ KeyId: key.keyArn, KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY', SigningAlgorithms: ['ECDSA_SHA_256'] });
    const fromPem = createPublicKey(pem()).export({ type: 'spki', format: 'der' });
    expect(Buffer.from(answer.PublicKey ?? []).equals(fromPem)).toBe(true);
    expect(createPublicKey(pem()).asymmetricKeyDetails).toEqual({ namedCurve: 'prime256v1' });
  });

  it('finds the key by key id, key ARN, alias name and alias ARN; DescribeKey tells its id and ARN', async () => {
    const keyId = key.keyArn.slice(key.keyArn.lastIndexOf('/') + 1);
    for (const id of [keyId, key.keyArn, `alias/${key.alias}`, key.aliasArn]) {
      const { KeyMetadata } = await kms.send(new DescribeKeyCommand({ KeyId: id }));
      expect(KeyMetadata, id).toMatchObject({ KeyId: keyId, Arn: key.keyArn, KeyState: 'Enabled', KeyUsage: 'SIGN_VERIFY', KeySpec: 'ECC_NIST_P256' });
      const answer = await kms.send(new SignCommand({ KeyId: id, Message: Buffer.from(id), SigningAlgorithm: 'ECDSA_SHA_256' }));
      expect(answer.KeyId, id).toBe(key.keyArn);
    }
  });

  it('makes each configured key, refuses alias names KMS would refuse or that repeat', async () => {
    const workDir = mkdtempSync(join(tmpdir(), 'fake-kms-keys-'));
    const fake = await startFakeAws({ workDir, region: 'eu-west-1', account: '123456789012', signingKeys: [{ alias: 'a' }, { alias: 'team/b' }] });
    try {
      expect(fake.signingKeys.map((k) => k.aliasArn)).toEqual(['arn:aws:kms:eu-west-1:123456789012:alias/a', 'arn:aws:kms:eu-west-1:123456789012:alias/team/b']);
      expect(existsSync(join(workDir, 'kms', 'team', 'b.pem'))).toBe(true);
      expect(readFileSync(join(workDir, 'kms', 'a.pem'), 'utf8')).not.toBe(readFileSync(join(workDir, 'kms', 'team', 'b.pem'), 'utf8'));
    } finally {
      await fake.stop();
      rmSync(workDir, { recursive: true, force: true });
    }
    expect(() => resolveOptions({ workDir, signingKeys: [{ alias: 'alias/x' }] })).toThrow(/not a KMS alias name without "alias\/"/);
    expect(() => resolveOptions({ workDir, signingKeys: [{ alias: 'aws/s3' }] })).toThrow(/not a KMS alias name/);
    expect(() => resolveOptions({ workDir, signingKeys: [{ alias: '../x' }] })).toThrow(/not a KMS alias name/);
    expect(() => resolveOptions({ workDir, signingKeys: [{ alias: 'x' }, { alias: 'x' }] })).toThrow(/"x" is given twice/);
  });
});

describe('fake KMS Sign and Verify', () => {
  const message = Buffer.from('{"critical":{"image":{"docker-manifest-digest":"sha256:0123"}}}');

  it('signs a RAW message with ECDSA over its SHA-256 (DER): node:crypto verifies it with the PEM, and so does Verify', async () => {
    const signature = await signed({ KeyId: key.keyArn, Message: message, MessageType: 'RAW' });
    expect(signature[0]).toBe(0x30); // a DER SEQUENCE (r, s)
    expect(verify('sha256', message, pem(), signature)).toBe(true);
    expect(verify('sha256', Buffer.from('other'), pem(), signature)).toBe(false);
    const answer = await kms.send(new VerifyCommand({ KeyId: key.aliasArn, Message: message, Signature: signature, SigningAlgorithm: 'ECDSA_SHA_256' }));
    expect(answer).toMatchObject({ KeyId: key.keyArn, SignatureValid: true, SigningAlgorithm: 'ECDSA_SHA_256' });
  });

  it('signs a SHA-256 DIGEST without hashing it again: the signature is the one of the message it digests', async () => {
    const signature = await signed({ KeyId: `alias/${key.alias}`, Message: sha256(message), MessageType: 'DIGEST' });
    expect(verify('sha256', message, pem(), signature)).toBe(true);
    const check = (m: Buffer, type: 'RAW' | 'DIGEST', s = signature) =>
      kms.send(new VerifyCommand({ KeyId: key.keyArn, Message: m, MessageType: type, Signature: s, SigningAlgorithm: 'ECDSA_SHA_256' }));
    expect((await check(message, 'RAW')).SignatureValid).toBe(true);
    expect((await check(sha256(message), 'DIGEST')).SignatureValid).toBe(true);
    const raw = await signed({ KeyId: key.keyArn, Message: message });
    expect((await check(sha256(message), 'DIGEST', raw)).SignatureValid).toBe(true);
  });

  it('answers a signature that does not match with KMSInvalidSignatureException, for RAW and DIGEST', async () => {
    const signature = await signed({ KeyId: key.keyArn, Message: message });
    const check = (m: Buffer, type: 'RAW' | 'DIGEST', s = signature) =>
      failure(kms.send(new VerifyCommand({ KeyId: key.keyArn, Message: m, MessageType: type, Signature: s, SigningAlgorithm: 'ECDSA_SHA_256' })));
    expect(await check(Buffer.from('tampered'), 'RAW')).toBe('KMSInvalidSignatureException');
    expect(await check(sha256(Buffer.from('tampered')), 'DIGEST')).toBe('KMSInvalidSignatureException');
    expect(await check(message, 'RAW', Buffer.from('not a DER signature'))).toBe('KMSInvalidSignatureException');
    expect(await check(sha256(message), 'DIGEST', Buffer.from('not a DER signature'))).toBe('KMSInvalidSignatureException');
  });

  it('refuses what KMS refuses: unknown keys, another algorithm, a message over 4096 bytes, a digest not 32 bytes', async () => {
    const sign = (input: Partial<SignCommandInput>) =>
      failure(kms.send(new SignCommand({ KeyId: key.keyArn, Message: message, SigningAlgorithm: 'ECDSA_SHA_256', ...input })));
    expect(await sign({ KeyId: 'alias/none' })).toBe('NotFoundException');
    expect(await sign({ KeyId: 'arn:aws:kms:us-east-1:000000000000:alias/none' })).toBe('NotFoundException');
    expect(await sign({ KeyId: '00000000-0000-4000-8000-000000000000' })).toBe('NotFoundException');
    expect(await sign({ KeyId: 'arn:aws:kms:eu-west-1:000000000000:' + key.keyArn.slice(key.keyArn.indexOf('key/')) })).toBe('NotFoundException');
    expect(await sign({ KeyId: 'not-a-key' })).toBe('NotFoundException');
    expect(await sign({ SigningAlgorithm: 'ECDSA_SHA_384' })).toBe('InvalidKeyUsageException');
    expect(await sign({ SigningAlgorithm: 'RSASSA_PSS_SHA_256' })).toBe('InvalidKeyUsageException');
    expect(await sign({ Message: Buffer.alloc(4097) })).toBe('ValidationException');
    expect(await sign({ Message: Buffer.alloc(4096) })).toBe('no error');
    expect(await sign({ Message: Buffer.alloc(31), MessageType: 'DIGEST' })).toBe('ValidationException');
    expect(await sign({ Message: Buffer.alloc(33), MessageType: 'DIGEST' })).toBe('ValidationException');
    expect(await sign({ MessageType: 'EXTERNAL_MU' })).toBe('ValidationException');
    // The 4097-byte message is refused by KMS's model (Message: max 4096) before the fake's own check.
    expect((await stack.takeViolations()).map((v) => `${v.kind} ${v.operation} ${v.path}`)).toEqual(['input Sign message']);
    const res = await fetch(stack.fake.url, { method: 'POST', headers: { 'x-amz-target': 'TrentService.Sign' }, body: '{}' });
    expect(res.status).toBe(400); // unsigned
  });

  it('takes the fake faults as the other services do', async () => {
    await stack.control.inject({ kind: 'throttle', operation: 'Sign' });
    await stack.control.inject({ kind: 'denied', operation: 'GetPublicKey' });
    expect(await failure(signed({ KeyId: key.keyArn, Message: message }))).toBe('ThrottlingException');
    expect(await failure(kms.send(new GetPublicKeyCommand({ KeyId: key.keyArn })))).toBe('AccessDeniedException');
    expect(await failure(signed({ KeyId: key.keyArn, Message: message }))).toBe('no error');
  });
});

describe('cosign and the fake KMS', () => {
  const run = promisify(execFile);
  let dir: string;
  let blob: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'fake-kms-cosign-'));
    blob = join(dir, 'payload.json');
    writeFileSync(blob, '{"critical":{"identity":{"docker-reference":"registry/app"}}}');
    writeFileSync(join(dir, 'other.json'), '{"critical":{"identity":{"docker-reference":"registry/evil"}}}');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  /** cosign with AWS's Go SDK pointed at the fake (AWS_ENDPOINT_URL_KMS, set by startStack) and HOME kept out. */
  const cosign = (...args: string[]) =>
    run(COSIGN, args, { env: { ...process.env, HOME: dir, AWS_ACCESS_KEY_ID: STATIC_CREDENTIALS.accessKeyId, AWS_SECRET_ACCESS_KEY: STATIC_CREDENTIALS.secretAccessKey } });

  it('cosign verify-blob accepts a RAW Sign signature with the PEM or awskms://, and refuses it for another blob', async () => {
    const signature = join(dir, 'payload.sig');
    writeFileSync(signature, (await signed({ KeyId: key.aliasArn, Message: readFileSync(blob) })).toString('base64'));
    // cosign 3 deprecates --signature for --bundle, but still takes it: a signature as `cosign sign` pushes it.
    const verifyBlob = (keyRef: string, file: string) => cosign('verify-blob', '--key', keyRef, '--signature', signature, '--insecure-ignore-tlog=true', file);
    expect((await verifyBlob(key.publicKeyPem, blob)).stderr).toContain('Verified OK');
    expect((await verifyBlob(`awskms:///${key.keyArn}`, blob)).stderr).toContain('Verified OK');
    await expect(verifyBlob(key.publicKeyPem, join(dir, 'other.json'))).rejects.toThrow(/invalid signature/i);
  });

  it('cosign sign-blob with awskms:// (Sign with a DIGEST) makes a bundle the PEM verifies', async () => {
    // Over 4096 bytes, which Sign takes only as a digest.
    const large = join(dir, 'large.bin');
    writeFileSync(large, Buffer.alloc(5000, 'x'));
    // A signing config without services: no Rekor upload, no timestamp authority, nothing fetched.
    const config = join(dir, 'signing-config.json');
    writeFileSync(config, JSON.stringify({ mediaType: 'application/vnd.dev.sigstore.signingconfig.v0.2+json', rekorTlogConfig: { selector: 'ANY' }, tsaConfig: { selector: 'ANY' } }));
    const bundle = join(dir, 'large.bundle.json');
    await stack.control.resetCalls();
    await cosign('sign-blob', '--yes', '--key', `awskms:///alias/${key.alias}`, '--signing-config', config, '--bundle', bundle, large);
    expect(await stack.control.calls()).toMatchObject({ Sign: 1 });
    await stack.control.resetCalls();
    const verifyBlob = (file: string) => cosign('verify-blob', '--key', key.publicKeyPem, '--bundle', bundle, '--insecure-ignore-tlog=true', file);
    expect((await verifyBlob(large)).stderr).toContain('Verified OK');
    await expect(verifyBlob(join(dir, 'other.json'))).rejects.toThrow(/invalid signature|does not match/i);
    expect(await stack.control.calls()).toEqual({}); // verified offline, with the PEM alone
  });
});
