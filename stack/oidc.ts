import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { importJWK, SignJWT, type JWK, type JWTPayload } from 'jose';
import { ISSUER_FILE, PRIVATE_KEY_FILE } from './fake-aws/oidc-issuer';

export interface TokenClaims extends JWTPayload {
  aud: string;
  /** Default: GitLab's `project_path:<project_path>:ref_type:<ref_type>:ref:<ref>`. */
  sub?: string;
  /** Absolute expiry in epoch seconds (default: now + 5 minutes). */
  exp?: number;
}

export interface SignOptions {
  /** Sign with this private JWK instead of the issuer's (to forge a token the issuer never made). */
  privateJwk?: JWK;
  /** Override the issuer (default: the URL in <workDir>/oidc-issuer). */
  issuer?: string;
  /** Clock in epoch seconds (default: now). */
  now?: number;
}

/**
 * A GitLab-shaped CI id token signed by the fake issuer whose key the fake AWS process wrote into workDir.
 * Claims given override the GitLab defaults below.
 */
export async function signToken(workDir: string, claims: TokenClaims, opts: SignOptions = {}): Promise<string> {
  const jwk = opts.privateJwk ?? (JSON.parse(readFileSync(join(workDir, PRIVATE_KEY_FILE), 'utf8')) as JWK);
  const issuer = opts.issuer ?? readFileSync(join(workDir, ISSUER_FILE), 'utf8').trim();
  const now = opts.now ?? Math.floor(Date.now() / 1000);
  const projectPath = String(claims['project_path'] ?? 'group/project');
  const namespacePath = projectPath.includes('/') ? projectPath.slice(0, projectPath.lastIndexOf('/')) : projectPath;
  const ref = String(claims['ref'] ?? 'main');
  const refType = String(claims['ref_type'] ?? 'branch');
  const payload: JWTPayload = {
    namespace_id: '1',
    namespace_path: namespacePath,
    project_id: '1',
    project_path: projectPath,
    user_id: '1',
    user_login: 'developer',
    user_email: 'developer@example.com',
    user_access_level: 'developer',
    pipeline_id: '1',
    pipeline_source: 'push',
    job_id: '1',
    ref,
    ref_type: refType,
    ref_path: refType === 'tag' ? `refs/tags/${ref}` : `refs/heads/${ref}`,
    ref_protected: 'true',
    runner_id: 1,
    runner_environment: 'self-hosted',
    sha: '0123456789abcdef0123456789abcdef01234567',
    project_visibility: 'private',
    ci_config_ref_uri: `gitlab.example.com/${projectPath}//.gitlab-ci.yml@refs/heads/${ref}`,
    ci_config_sha: '0123456789abcdef0123456789abcdef01234567',
    jti: randomUUID(),
    iss: issuer,
    iat: now,
    nbf: now - 5,
    exp: now + 300,
    sub: `project_path:${projectPath}:ref_type:${refType}:ref:${ref}`,
    ...claims,
  };
  const alg = jwk.alg ?? 'RS256';
  const header = { alg, typ: 'JWT', ...(jwk.kid === undefined ? {} : { kid: jwk.kid }) };
  return new SignJWT(payload).setProtectedHeader(header).sign(await importJWK(jwk, alg));
}
