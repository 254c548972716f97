/**
 * sign_with on the local stack, proved with Debian's cosign: a job that signs what it pushed passes
 * `cosign verify --key <the fake KMS key's public PEM>` (transparency log off), for the index and its image; an
 * image pushed without signing and a digest signed with another key do not; a multi-platform image's index and
 * each platform's image verify; a rerun with skip_unchanged signs nothing twice; and a signing failure after the
 * push fails the job with the reports written.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import type { SigningKeyInfo } from '../../stack/fake-aws/server';
import { COSIGN } from '../../stack/paths';
import { platformManifests } from '../../stack/registry';
import type { Stack } from '../../stack/stack';
import { makeJob, readDotenv, runAction, visible } from './helpers';
import { sharedStack } from './stack-for-file';

let stack: Stack;
const control = sharedStack((s) => (stack = s));
const keys = () => stack.signingKeys as [SigningKeyInfo, SigningKeyInfo];

const fresh = (name: string) => `${name}-${Date.now().toString(36)}`;

interface Signature {
  digest: string;
  signature: string;
  keyArn: string;
  alreadySigned: boolean;
}
interface Record {
  status: string;
  digest: string;
  reused?: boolean;
  signatures?: Signature[];
}

/** Runs a job of `fixture` pushing to `repository` with `inputs`; its exit code, visible log, record and dotenv. */
async function run(fixture: string, repository: string, inputs: { [name: string]: string } = {}) {
  const job = await makeJob(stack, fixture, {
    CODEBUILD_IMAGE_IMAGE: `${stack.registry}/${repository}`,
    CODEBUILD_IMAGE_BUILD_ARGS: JSON.stringify([`BASE_IMAGE=${stack.baseImage ?? ''}`, `NONCE=${repository}`]),
    ...inputs,
  });
  const result = await runAction(job);
  const record = JSON.parse(readFileSync(join(job.reportDir, 'build.json'), 'utf8')) as Record;
  return { code: result.code, log: visible(result.output), record, dotenv: readDotenv(join(job.reportDir, 'build.env')) };
}

/** `cosign verify --key <pem>` of `repository@digest`, transparency log off; its exit code and output. */
async function cosignVerify(pem: string, repository: string, digest: string): Promise<{ code: number; output: string }> {
  const args = ['verify', '--key', pem, '--insecure-ignore-tlog=true', '--allow-http-registry', `${stack.registry}/${repository}@${digest}`];
  try {
    const { stdout, stderr } = await promisify(execFile)(COSIGN, args, { env: { ...process.env, DOCKER_CONFIG: stack.dockerConfig }, timeout: 60_000 });
    return { code: 0, output: stdout + stderr };
  } catch (e) {
    const err = e as { code?: number; stdout?: string; stderr?: string };
    return { code: err.code ?? -1, output: `${err.stdout ?? ''}${err.stderr ?? ''}` };
  }
}

const signedLines = (log: string) => log.split('\n').filter((l) => /^(Signed|Already signed)/.test(l));

describe('sign_with', () => {
  it('signs the pushed index and its image: cosign verifies both with the key, not with another; a rerun signs nothing twice', async () => {
    const [team, other] = keys();
    const repository = fresh('signed/app');
    const inputs = { CODEBUILD_IMAGE_SIGN_WITH: team.aliasArn, CODEBUILD_IMAGE_SKIP_UNCHANGED: 'true' };
    const first = await run('examples/hello', repository, inputs);
    expect(first.code, first.log).toBe(0);
    // With attestations (the default) the digest names an index over the image and its attestation manifest.
    const [image] = await platformManifests(stack.registry, repository, first.record.digest);
    const digests = [first.record.digest, image!.digest];
    expect(first.record.signatures).toEqual(digests.map((digest) => ({ digest, signature: `${stack.registry}/${repository}:${digest.replace(':', '-')}.sig`, keyArn: team.keyArn, alreadySigned: false })));
    expect(signedLines(first.log)).toEqual(digests.map((d) => `Signed ${stack.registry}/${repository}@${d} with ${team.keyArn}, in ${stack.registry}/${repository}:${d.replace(':', '-')}.sig`));
    for (const digest of digests) {
      const verified = await cosignVerify(team.publicKeyPem, repository, digest);
      expect(verified.code, verified.output).toBe(0);
      expect(verified.output).toContain(`"docker-manifest-digest":"${digest}"`);
      const wrongKey = await cosignVerify(other.publicKeyPem, repository, digest);
      expect(wrongKey.code).not.toBe(0);
      expect(wrongKey.output).toContain('no matching signatures');
    }

    await control().resetCalls();
    const again = await run('examples/hello', repository, inputs);
    expect(again.code, again.log).toBe(0);
    expect(again.log).toContain('Unchanged build inputs');
    expect(signedLines(again.log)).toEqual(digests.map((d) => `Already signed: ${stack.registry}/${repository}@${d} with ${team.keyArn}, in ${stack.registry}/${repository}:${d.replace(':', '-')}.sig`));
    expect(again.record.signatures?.map((s) => s.alreadySigned)).toEqual([true, true]);
    expect((await control().calls()).Sign ?? 0).toBe(0);
  });

  it('cosign refuses an image pushed unsigned; a signing failure fails the job with the reports written; another key does not verify', async () => {
    const [team, other] = keys();
    const repository = fresh('unsigned/app');
    const reuse = { CODEBUILD_IMAGE_SKIP_UNCHANGED: 'true' };
    const unsigned = await run('examples/hello', repository, reuse);
    expect(unsigned.code, unsigned.log).toBe(0);
    expect(unsigned.record.signatures).toBeUndefined();
    const { digest } = unsigned.record;
    const none = await cosignVerify(team.publicKeyPem, repository, digest);
    expect(none.code).not.toBe(0);
    expect(none.output).toContain('no signatures found');

    await control().inject({ kind: 'denied', operation: 'Sign', count: 1 });
    const denied = await run('examples/hello', repository, { ...reuse, CODEBUILD_IMAGE_SIGN_WITH: team.keyArn });
    expect(denied.code, denied.log).toBe(1);
    expect(denied.log).toMatch(new RegExp(`ERROR: ${stack.registry}/${repository}@${digest} is pushed but unsigned: Signing with ${team.keyArn} failed: AccessDeniedException: .*; The CI role needs kms:Sign on the key`));
    expect(denied.log).toContain('Build status: SUCCEEDED, image not signed');
    expect(denied.record).toMatchObject({ status: 'SUCCEEDED', digest, signatures: [] });
    expect(denied.dotenv.IMAGE_DIGEST).toBe(digest);

    const otherKey = await run('examples/hello', repository, { ...reuse, CODEBUILD_IMAGE_SIGN_WITH: other.aliasArn });
    expect(otherKey.code, otherKey.log).toBe(0);
    const wrongKey = await cosignVerify(team.publicKeyPem, repository, digest);
    expect(wrongKey.code).not.toBe(0);
    expect(wrongKey.output).toContain('no matching signatures');
    expect((await cosignVerify(other.publicKeyPem, repository, digest)).code).toBe(0);
  });

  it("signs a multi-platform image: cosign verifies the index and each platform's image", async () => {
    const [team] = keys();
    const repository = fresh('signed/multi');
    const result = await run('test/fixtures/arch', repository, {
      CODEBUILD_IMAGE_PLATFORMS: JSON.stringify(['linux/amd64', 'linux/arm64']),
      CODEBUILD_IMAGE_SIGN_WITH: team.aliasArn,
    });
    expect(result.code, result.log).toBe(0);
    const images = await platformManifests(stack.registry, repository, result.record.digest);
    expect(images.map((i) => i.platform)).toEqual(['linux/amd64', 'linux/arm64']);
    const reported = [result.record.digest, result.dotenv.IMAGE_DIGEST_LINUX_AMD64!, result.dotenv.IMAGE_DIGEST_LINUX_ARM64!];
    for (const digest of new Set([...reported, ...images.map((i) => i.digest)])) {
      const verified = await cosignVerify(team.publicKeyPem, repository, digest);
      expect(verified.code, `${digest}: ${verified.output}`).toBe(0);
    }
    expect(result.record.signatures?.map((s) => s.digest).sort()).toEqual([...new Set([...reported, ...images.map((i) => i.digest)])].sort());
  });
});
