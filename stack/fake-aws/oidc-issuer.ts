import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createLocalJWKSet, exportJWK, generateKeyPair, type JWK } from 'jose';

/** The GitLab stand-in: an RS256 key whose private half is shared with signers through workDir. */
export interface OidcIssuer {
  issuer: string;
  jwks: { keys: JWK[] };
  keySet: ReturnType<typeof createLocalJWKSet>;
  discovery(): object;
}

export const PRIVATE_KEY_FILE = 'oidc-private.jwk';
export const ISSUER_FILE = 'oidc-issuer';

export async function createIssuer(baseUrl: string, workDir: string): Promise<OidcIssuer> {
  const { publicKey, privateKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = randomUUID();
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  const privateJwk = { ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' };
  const issuer = `${baseUrl}/oidc`;
  await writeFile(join(workDir, PRIVATE_KEY_FILE), JSON.stringify(privateJwk), { mode: 0o600 });
  await writeFile(join(workDir, ISSUER_FILE), issuer);
  const jwks = { keys: [publicJwk] };
  return {
    issuer,
    jwks,
    keySet: createLocalJWKSet(jwks),
    discovery: () => ({
      issuer,
      jwks_uri: `${issuer}/jwks`,
      response_types_supported: ['id_token'],
      subject_types_supported: ['public'],
      id_token_signing_alg_values_supported: ['RS256'],
      claims_supported: ['iss', 'sub', 'aud', 'exp', 'iat', 'nbf', 'jti', 'namespace_path', 'project_path', 'ref', 'ref_type'],
    }),
  };
}
