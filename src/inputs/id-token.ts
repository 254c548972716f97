/**
 * The GitLab OIDC token, checked locally before it goes to STS: STS answers a malformed, expired or
 * unsigned token with errors that name neither the input nor the token. Only the claims are decoded;
 * the signature is STS's to verify. Messages never contain the token or any claim value but `aud`.
 */
import { decodeJwt, decodeProtectedHeader, type JWTPayload } from 'jose';
import { shown } from '../shared/shown';

/** Why the token cannot be exchanged, or undefined when its shape, algorithm, expiry and audience look right. */
export function idTokenProblem(token: string, expectedAudience: string | undefined, nowSeconds = Date.now() / 1000): string | undefined {
  let claims: JWTPayload;
  let alg: unknown;
  try {
    claims = decodeJwt(token);
    alg = decodeProtectedHeader(token).alg;
  } catch {
    // jose's messages do not quote the token, but say nothing a user can act on either.
    return 'does not hold a JWT (three base64url parts separated by dots, with JSON claims); check the job\'s id_tokens';
  }
  if (typeof alg !== 'string' || alg.toLowerCase() === 'none') {
    return 'holds an unsigned JWT (alg "none"), which AWS never accepts; use the token GitLab issues through the job\'s id_tokens';
  }
  if (typeof claims.exp === 'number' && claims.exp <= nowSeconds) {
    return `holds a JWT that expired ${ago(nowSeconds - claims.exp)} ago; GitLab's id_tokens are valid only while the job runs, so use this job's own token, not a stored one`;
  }
  const audiences = typeof claims.aud === 'string' ? [claims.aud] : (claims.aud ?? []);
  if (expectedAudience && audiences.length > 0 && !audiences.includes(expectedAudience)) {
    return `holds a JWT for audience ${audiences.map((a) => shown(a)).join(', ')} where ${shown(expectedAudience)} was expected: make the job's id_tokens aud equal to oidc_audience`;
  }
  return undefined;
}

function ago(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172_800) return `${Math.round(s / 3600)} h`;
  return `${Math.round(s / 86_400)} days`;
}
