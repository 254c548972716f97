// Signing (src/sign/): the bytes cosign 3.1.1 stores, held against what it wrote (test/fixtures/cosign); the KMS
// signer with the real SDK against the fake's KMS; and the whole flow against a real docker-registry that requires
// a user, signed in to as the job does (registry_credentials, read from the fake's Secrets Manager).
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetPublicKeyCommand, type GetPublicKeyCommandOutput, KMSClient } from '@aws-sdk/client-kms';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { ECRClient } from '@aws-sdk/client-ecr';
import { SSMClient } from '@aws-sdk/client-ssm';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SigningKeyInfo } from '../../stack/fake-aws/server';
import { stopPid } from '../../stack/process';
import { type Registry, startRegistry } from '../../stack/registry';
import type { Settings } from '../../src/inputs/settings';
import { OCI_INDEX, OCI_MANIFEST, RegistryClient, sha256Digest } from '../../src/registry/distribution';
import { registryClient } from '../../src/registry/signin';
import { kmsSigner, verifiesWith } from '../../src/sign/kms-signer';
import { simpleSigningPayload } from '../../src/sign/payload';
import { signImage } from '../../src/sign/sign-image';
import { SIGNATURE_ANNOTATION, signatureImage, signatureLayers, signatureTag, signaturesOver } from '../../src/sign/signature-image';
import { AwsStepError } from '../../src/shared/errors';
import { repoRoot } from '../helpers/gitlab-ci-local';
import { memoryOutput } from '../helpers/output';
import { settingsFixture } from '../helpers/settings-fixture';
import { startStack, STATIC_CREDENTIALS, type Stack } from './fake-support';

const fixture = (name: string) => readFileSync(join(repoRoot, 'test/fixtures/cosign', name));
/** What cosign signed for the fixtures (see test/fixtures/cosign/README.md). */
const COSIGN_REPOSITORY = '127.0.0.1:5999/demo/app';
const COSIGN_DIGEST = 'sha256:e72ee84c101b0f1e9d93ff2689de18c3e4feb04f26c5435289f1d7d69289593a';

describe("cosign's classic storage", () => {
  it('signs the payload cosign writes, byte for byte', () => {
    expect(simpleSigningPayload(COSIGN_REPOSITORY, COSIGN_DIGEST).equals(fixture('payload.json'))).toBe(true);
  });

  it('tags the signatures beside the digest', () => {
    expect(signatureTag(COSIGN_DIGEST)).toBe('sha256-e72ee84c101b0f1e9d93ff2689de18c3e4feb04f26c5435289f1d7d69289593a.sig');
  });

  it("writes cosign's manifest and config for one signature, and appends a second as cosign does", () => {
    const one = fixture('one-signature.json');
    const two = fixture('two-signatures.json');
    const rewritten = signatureImage(signatureLayers(one));
    expect(rewritten.manifest.equals(one)).toBe(true);
    expect(JSON.parse(one.toString()).config.digest).toBe(sha256Digest(rewritten.config));
    const appended = signatureImage([...signatureLayers(one), signatureLayers(two)[1]!]);
    expect(appended.manifest.equals(two)).toBe(true);
  });

  it("finds each key's signature over a payload, and only over that payload", () => {
    const layers = signatureLayers(fixture('two-signatures.json'));
    const payload = fixture('payload.json');
    const [first, second] = signaturesOver(layers, sha256Digest(payload));
    const [firstKey, secondKey] = ['first.pub', 'second.pub'].map((f) => createPublicKey(fixture(f)));
    expect([verifiesWith(firstKey!, payload, first!), verifiesWith(firstKey!, payload, second!)]).toEqual([true, false]);
    expect([verifiesWith(secondKey!, payload, first!), verifiesWith(secondKey!, payload, second!)]).toEqual([false, true]);
    const other = simpleSigningPayload(COSIGN_REPOSITORY, `sha256:${'0'.repeat(64)}`);
    expect(signaturesOver(layers, sha256Digest(other))).toEqual([]);
    expect(verifiesWith(firstKey!, other, first!)).toBe(false);
    expect(verifiesWith(firstKey!, payload, 'not a signature')).toBe(false);
  });
});

/** A server that records each request (method, URL, authorization, body) and answers with `answer`. */
async function recordingServer(answer: (method: string, url: string, headers: IncomingHttpHeaders) => [number, Record<string, string>?]) {
  const seen: { method: string; url: string; authorization: string | undefined; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization, body });
      const [status, headers] = answer(req.method ?? '', req.url ?? '', req.headers);
      res.writeHead(status, headers).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { host, seen, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('RegistryClient.pushBlob', () => {
  const bytes = Buffer.from('{"a":1}');
  const digest = sha256Digest(bytes);
  const basic = `Basic ${Buffer.from('u:p').toString('base64')}`;
  const credentials = async () => ({ username: 'u', password: 'p' });

  it('follows a relative Location, keeps its query, and signs in on the first 401', async () => {
    const registry = await recordingServer((method, _url, headers) => {
      if (headers.authorization !== basic) return [401, { 'www-authenticate': 'Basic realm="r"' }];
      if (method === 'HEAD') return [404];
      if (method === 'POST') return [202, { location: '/v2/team/app/blobs/uploads/u1?_state=s1' }];
      return [201];
    });
    try {
      expect(await new RegistryClient(registry.host, { credentials }).pushBlob('team/app', bytes)).toBe(digest);
      const sent = registry.seen.filter((r) => r.authorization === basic).map((r) => `${r.method} ${r.url} ${r.body}`);
      expect(sent).toEqual([
        `HEAD /v2/team/app/blobs/${digest} `,
        'POST /v2/team/app/blobs/uploads/ ',
        `PUT /v2/team/app/blobs/uploads/u1?_state=s1&digest=${encodeURIComponent(digest)} {"a":1}`,
      ]);
    } finally {
      await registry.close();
    }
  });

  it('uploads nothing when the blob is there, and never sends the sign-in to a Location on another host', async () => {
    const elsewhere = await recordingServer(() => [201]);
    const registry = await recordingServer((method, url, headers) => {
      if (headers.authorization !== basic) return [401, { 'www-authenticate': 'Basic realm="r"' }];
      if (method === 'HEAD') return [url.includes('present') ? 200 : 404];
      return [202, { location: `http://${elsewhere.host}/upload?id=1` }];
    });
    try {
      const client = new RegistryClient(registry.host, { credentials });
      registry.seen.length = 0;
      expect(await client.pushBlob('present', bytes)).toBe(digest);
      expect(registry.seen.map((r) => r.method)).toEqual(['HEAD', 'HEAD']);
      expect(await client.pushBlob('team/app', bytes)).toBe(digest);
      expect(elsewhere.seen).toEqual([{ method: 'PUT', url: `/upload?id=1&digest=${encodeURIComponent(digest)}`, authorization: undefined, body: '{"a":1}' }]);
    } finally {
      await Promise.all([registry.close(), elsewhere.close()]);
    }
  });
});

const USER = { username: 'pusher', password: 'Pw-s1gn-7c1d' };
let stack: Stack;
let registry: Registry;
let registryDir: string;
let team: SigningKeyInfo;
let other: SigningKeyInfo;
const kms = (region: string) => new KMSClient({ region, credentials: STATIC_CREDENTIALS, maxAttempts: 1 });

beforeAll(async () => {
  registryDir = mkdtempSync(join(tmpdir(), 'sign-test-'));
  [stack, registry] = await Promise.all([
    startStack({ secrets: { 'ci/registry': JSON.stringify(USER) }, signingKeys: [{ alias: 'team-signing' }, { alias: 'other-team' }] }),
    startRegistry(registryDir, { auth: [USER] }),
  ]);
  [team, other] = stack.fake.signingKeys as [SigningKeyInfo, SigningKeyInfo];
});
afterAll(async () => {
  await stack?.stop();
  if (registry) await stopPid(registry.daemon.pid);
  rmSync(registryDir, { recursive: true, force: true });
});

describe('the KMS signer', () => {
  it('resolves an alias ARN to its key, and signs so that the public key verifies', async () => {
    const signer = await kmsSigner(kms('us-east-1'), team.aliasArn);
    expect(signer.keyArn).toBe(team.keyArn);
    const payload = simpleSigningPayload('registry.example.com/app', COSIGN_DIGEST);
    const signature = await signer.sign(payload);
    expect(verifiesWith(createPublicKey(readFileSync(team.publicKeyPem)), payload, signature)).toBe(true);
    expect(verifiesWith(createPublicKey(readFileSync(other.publicKeyPem)), payload, signature)).toBe(false);
    expect(signer.verifies(payload, signature)).toBe(true);
  });

  it.each([
    ['an RSA key', { KeySpec: 'RSA_2048', KeyUsage: 'SIGN_VERIFY', SigningAlgorithms: ['RSASSA_PKCS1_V1_5_SHA_256'] }, 'the key is RSA_2048 for SIGN_VERIFY'],
    ['a symmetric key', { KeySpec: 'SYMMETRIC_DEFAULT', KeyUsage: 'ENCRYPT_DECRYPT' }, 'the key is SYMMETRIC_DEFAULT for ENCRYPT_DECRYPT'],
  ] as [string, Partial<GetPublicKeyCommandOutput>, string][])('refuses %s before signing anything, saying which key to use', async (_name, answer, found) => {
    const client = new KMSClient({ region: 'eu-west-1', credentials: STATIC_CREDENTIALS });
    const mock = mockClient(client);
    mock.on(GetPublicKeyCommand).resolves({ KeyId: 'arn:aws:kms:eu-west-1:123456789012:key/k', PublicKey: new Uint8Array([1]), ...answer });
    const e = await kmsSigner(client, 'arn:aws:kms:eu-west-1:123456789012:alias/a').catch((x: unknown) => x);
    expect((e as Error).message).toBe(
      `Reading the public key of arn:aws:kms:eu-west-1:123456789012:alias/a failed: UnsupportedKey: ${found}\n` +
        'sign_with must name an asymmetric KMS key with key spec ECC_NIST_P256 and key usage SIGN_VERIFY (see docs/signing.md).',
    );
    expect(mock.calls()).toHaveLength(1);
  });

  it('names kms:GetPublicKey when the key cannot be read', async () => {
    const missing = 'arn:aws:kms:us-east-1:000000000000:alias/no-such-key';
    const e = await kmsSigner(kms('us-east-1'), missing).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(AwsStepError);
    expect((e as Error).message).toMatch(/^Reading the public key of arn:aws:kms:us-east-1:000000000000:alias\/no-such-key failed: NotFoundException/);
    expect((e as Error).message).toContain('The CI role needs kms:GetPublicKey on the key');
  });
});

/** The job's settings for an image in the test registry, signed in to with registry_credentials. */
function settings(repository: string): Settings {
  const host = registry.host;
  return settingsFixture({
    image: { registry: host, path: repository, name: `${host}/${repository}` },
    registryLogins: [{ registry: host, type: 'SECRETS_MANAGER', reference: 'ci/registry' }],
    signWith: team.aliasArn,
  });
}

const clients = () => ({
  ecr: async (region: string) => new ECRClient({ region, credentials: STATIC_CREDENTIALS }),
  ssm: async () => new SSMClient({ credentials: STATIC_CREDENTIALS, maxAttempts: 1 }),
  secrets: async () => new SecretsManagerClient({ credentials: STATIC_CREDENTIALS, maxAttempts: 1 }),
  kms: async (region: string) => kms(region),
});

/** Pushes an image index as BuildKit does with attestations: one image manifest and its attestation manifest. */
async function pushIndexWithAttestation(client: RegistryClient, repository: string): Promise<{ index: string; image: string; attestation: string }> {
  const manifestOf = async (config: object) => {
    const configBytes = Buffer.from(JSON.stringify(config));
    const digest = await client.pushBlob(repository, configBytes);
    const bytes = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: configBytes.length }, layers: [] }));
    return { digest: await client.putManifest(repository, sha256Digest(bytes), OCI_MANIFEST, bytes), size: bytes.length };
  };
  const image = await manifestOf({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: repository });
  const attestation = await manifestOf({ architecture: 'unknown', os: 'unknown', rootfs: { type: 'layers', diff_ids: [] }, nonce: repository });
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { mediaType: OCI_MANIFEST, ...image, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: OCI_MANIFEST, ...attestation, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.type': 'attestation-manifest', 'vnd.docker.reference.digest': image.digest } },
      ],
    }),
  );
  return { index: await client.putManifest(repository, 'latest', OCI_INDEX, index), image: image.digest, attestation: attestation.digest };
}

describe('signImage', () => {
  it('signs an index and its image manifest (not the attestation), once, with the job sign-in', async () => {
    const s = settings(`group/app-${Date.now().toString(36)}`);
    const client = registryClient(s, clients());
    const pushed = await pushIndexWithAttestation(client, s.image.path);
    await stack.control.resetCalls();

    const out = memoryOutput();
    const first = await signImage(s, team.aliasArn, [pushed.index], clients(), out);
    expect(first).toEqual({
      signatures: [pushed.index, pushed.image].map((digest) => ({ digest, signature: `${s.image.name}:${signatureTag(digest)}`, keyArn: team.keyArn, alreadySigned: false })),
    });
    expect(out.lines).toEqual([pushed.index, pushed.image].map((d) => `Signed ${s.image.name}@${d} with ${team.keyArn}, in ${s.image.name}:${signatureTag(d)}`));
    expect(await client.find(s.image.path, signatureTag(pushed.attestation))).toBeUndefined();
    const stored = await client.manifest(s.image.path, signatureTag(pushed.image));
    const [layer] = signatureLayers(stored.bytes);
    const payload = await client.blob(s.image.path, layer!.digest);
    expect(payload.equals(simpleSigningPayload(s.image.name, pushed.image))).toBe(true);
    expect(verifiesWith(createPublicKey(readFileSync(team.publicKeyPem)), payload, layer!.annotations![SIGNATURE_ANNOTATION]!)).toBe(true);
    expect((await stack.control.calls()).Sign).toBe(2);

    const again = memoryOutput();
    const second = await signImage(s, team.keyArn, [pushed.index], clients(), again);
    expect(second.signatures.map((x) => x.alreadySigned)).toEqual([true, true]);
    expect(again.lines).toEqual([pushed.index, pushed.image].map((d) => `Already signed: ${s.image.name}@${d} with ${team.keyArn}, in ${s.image.name}:${signatureTag(d)}`));
    expect((await stack.control.calls()).Sign).toBe(2);
    expect((await client.manifest(s.image.path, signatureTag(pushed.image))).digest).toBe(stored.digest);
  });

  it("appends another key's signature and keeps the ones there", async () => {
    const s = settings(`group/two-keys-${Date.now().toString(36)}`);
    const client = registryClient(s, clients());
    const { image } = await pushIndexWithAttestation(client, s.image.path);
    await signImage(s, team.aliasArn, [image], clients(), memoryOutput());
    const before = signatureLayers((await client.manifest(s.image.path, signatureTag(image))).bytes);
    const outcome = await signImage(s, other.aliasArn, [image], clients(), memoryOutput());
    expect(outcome.signatures).toEqual([expect.objectContaining({ digest: image, keyArn: other.keyArn, alreadySigned: false })]);
    const after = signatureLayers((await client.manifest(s.image.path, signatureTag(image))).bytes);
    expect(after).toHaveLength(2);
    expect(after[0]).toEqual(before[0]);
  });

  it('reports the digest it could not sign, with the permission to grant, and stores nothing for it', async () => {
    const s = settings(`group/denied-${Date.now().toString(36)}`);
    const client = registryClient(s, clients());
    const { index } = await pushIndexWithAttestation(client, s.image.path);
    await stack.control.inject({ kind: 'denied', operation: 'Sign', count: 1 });
    const out = memoryOutput();
    const outcome = await signImage(s, team.aliasArn, [index], clients(), out);
    expect(outcome.signatures).toEqual([]);
    expect(outcome.failure?.digest).toBe(index);
    expect(outcome.failure?.error.message).toMatch(new RegExp(`^Signing with ${team.keyArn} failed: AccessDeniedException: .*\\nThe CI role needs kms:Sign on the key`));
    expect(out.lines).toEqual([]);
    expect(await client.find(s.image.path, signatureTag(index))).toBeUndefined();
  });

  it('reports a registry it cannot reach as a failure to sign, not as an unexpected error', async () => {
    const gone = '127.0.0.1:9'; // the discard port: nothing listens there
    const s = settingsFixture({ image: { registry: gone, path: 'group/app', name: `${gone}/group/app` }, signWith: team.aliasArn });
    const outcome = await signImage(s, team.aliasArn, [COSIGN_DIGEST], clients(), memoryOutput());
    expect(outcome.signatures).toEqual([]);
    expect(outcome.failure?.digest).toBe(COSIGN_DIGEST);
    expect(outcome.failure?.error.message).toMatch(new RegExp(`^Connecting to ${gone} failed: cannot reach ${gone} \\(ECONNREFUSED\\); if this runner reaches it only through a proxy, set HTTPS_PROXY`));
  });

  it('names the registry permissions when the registry refuses the job', async () => {
    const s = { ...settings(`group/read-only-${Date.now().toString(36)}`), registryLogins: [] };
    const outcome = await signImage(s, team.aliasArn, [COSIGN_DIGEST], clients(), memoryOutput());
    expect(outcome.failure?.digest).toBe(COSIGN_DIGEST);
    expect(outcome.failure?.error.message).toMatch(/failed: RegistryError: the registry answered 401\nThe job pushes the signature with its own sign-in to the registry: on ECR the CI role needs ecr:BatchCheckLayerAvailability/);
  });
});
