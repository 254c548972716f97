import { generateKeyPair, SignJWT, UnsecuredJWT } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { idTokenProblem } from '../../src/inputs/id-token';

const AUD = 'https://gitlab.example.com';
const NOW = 1_800_000_000;
let key: Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

beforeAll(async () => {
  key = (await generateKeyPair('RS256')).privateKey;
});

async function signed(claims: Record<string, unknown>): Promise<string> {
  return new SignJWT({ sub: 'project_path:group/app:ref_type:branch:ref:main', ...claims }).setProtectedHeader({ alg: 'RS256' }).sign(key);
}

describe('idTokenProblem', () => {
  it('accepts a signed, current token for the expected audience', async () => {
    expect(idTokenProblem(await signed({ aud: AUD, exp: NOW + 300 }), AUD, NOW)).toBeUndefined();
    expect(idTokenProblem(await signed({ aud: ['other', AUD], exp: NOW + 300 }), AUD, NOW)).toBeUndefined();
  });

  it.each(['not a jwt', 'a.b.c', 'eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln', ''])('refuses %j as not a JWT', (token) => {
    expect(idTokenProblem(token, AUD, NOW)).toMatch(/^does not hold a JWT/);
  });

  it('refuses an unsigned token', () => {
    const token = new UnsecuredJWT({ aud: AUD, exp: NOW + 300 }).encode();
    expect(idTokenProblem(token, AUD, NOW)).toMatch(/unsigned JWT \(alg "none"\)/);
  });

  it.each([
    [30, '30 s'],
    [600, '10 min'],
    [3 * 3600, '3 h'],
    [5 * 86_400, '5 days'],
  ])('says how long ago a token expired (%i s)', async (seconds, text) => {
    expect(idTokenProblem(await signed({ aud: AUD, exp: NOW - seconds }), AUD, NOW)).toContain(`expired ${text} ago`);
  });

  it('names the audience found and the one expected', async () => {
    expect(idTokenProblem(await signed({ aud: 'sts.amazonaws.com', exp: NOW + 300 }), AUD, NOW)).toContain(
      `audience "sts.amazonaws.com" where "${AUD}" was expected`,
    );
  });

  it('skips the audience check when no audience is expected', async () => {
    expect(idTokenProblem(await signed({ aud: 'anything', exp: NOW + 300 }), undefined, NOW)).toBeUndefined();
  });

  it('never includes the token or its signature in the message', async () => {
    for (const token of [await signed({ aud: 'x', exp: NOW + 300 }), await signed({ aud: AUD, exp: NOW - 60 }), new UnsecuredJWT({}).encode()]) {
      const message = idTokenProblem(token, AUD, NOW) ?? '';
      expect(message).not.toBe('');
      for (const part of token.split('.').filter((p) => p.length > 8)) expect(message).not.toContain(part);
    }
  });
});
