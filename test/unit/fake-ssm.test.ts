// The fake's Parameter Store API, reached as an SDK would (SigV4-signed JSON 1.1), over the values its CodeBuild
// resolves PARAMETER_STORE variables from: a parameter written before StartBuild reaches the build, and one deleted
// is gone. @aws-sdk/client-ssm is not a dependency, so the request is signed with @smithy/signature-v4 directly.
import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildspec, phaseList, runBuild, startStack, STATIC_CREDENTIALS, type Stack } from './fake-support';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ phaseDelayMs: 10 });
});
afterAll(async () => {
  await stack?.stop();
});

const bytes = (d: string | ArrayBuffer | ArrayBufferView): string | Uint8Array =>
  typeof d === 'string' ? d : d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

/** The checksum interface SignatureV4 expects, over node:crypto. */
class Sha256 {
  private readonly h: Hash | Hmac;
  constructor(secret?: string | ArrayBuffer | ArrayBufferView) {
    this.h = secret ? createHmac('sha256', bytes(secret)) : createHash('sha256');
  }
  update(data: string | ArrayBuffer | ArrayBufferView): void {
    this.h.update(bytes(data));
  }
  digest(): Promise<Uint8Array> {
    return Promise.resolve(new Uint8Array(this.h.digest()));
  }
}

async function ssm(operation: string, body: Record<string, unknown>): Promise<{ status: number; json: Record<string, unknown> }> {
  const url = new URL(stack.fake.url);
  const signer = new SignatureV4({ service: 'ssm', region: 'us-east-1', credentials: STATIC_CREDENTIALS, sha256: Sha256 });
  const signed = await signer.sign({
    method: 'POST',
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: '/',
    headers: { host: url.host, 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': `AmazonSSM.${operation}` },
    body: JSON.stringify(body),
  });
  const res = await fetch(stack.fake.url, { method: 'POST', headers: signed.headers, body: signed.body as string });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

describe('fake Parameter Store', () => {
  it('a SecureString put before StartBuild is resolved for the build; once deleted, builds cannot resolve it', async () => {
    const name = '/codebuild-image/job-tokens/group/app/1234';
    expect(await ssm('PutParameter', { Name: name, Value: 'job-token-value', Type: 'SecureString' })).toEqual({ status: 200, json: { Version: 1, Tier: 'Standard' } });
    expect((await ssm('PutParameter', { Name: name, Value: 'again', Type: 'SecureString' })).json.__type).toBe('ParameterAlreadyExists');
    expect((await ssm('GetParameter', { Name: name, WithDecryption: true })).json.Parameter).toMatchObject({ Value: 'job-token-value' });

    const check = { buildspecOverride: buildspec({ build: ['[ "$TOKEN" = job-token-value ]'] }), environmentVariablesOverride: [{ name: 'TOKEN', value: name, type: 'PARAMETER_STORE' as const }] };
    expect((await runBuild(stack, check)).buildStatus).toBe('SUCCEEDED');

    expect(await ssm('DeleteParameter', { Name: name })).toEqual({ status: 200, json: {} });
    expect((await ssm('DeleteParameter', { Name: name })).json.__type).toBe('ParameterNotFound');
    expect(phaseList(await runBuild(stack, check))).toContain('DOWNLOAD_SOURCE:FAILED');
  });

  it('refuses an unsigned request and an operation it does not have', async () => {
    const res = await fetch(stack.fake.url, { method: 'POST', headers: { 'x-amz-target': 'AmazonSSM.PutParameter' }, body: '{}' });
    expect(res.status).toBe(400);
    expect((await ssm('GetParametersByPath', { Name: '/x' })).json.__type).toBe('UnknownOperationException');
  });
});
