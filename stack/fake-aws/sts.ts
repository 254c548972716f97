import { randomUUID } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { compactVerify, decodeJwt, decodeProtectedHeader, errors, type JWTPayload } from 'jose';
import type { CredentialStore } from './credentials';
import type { Authorizer } from './iam/authorizer';
import { roleId } from './iam/config';
import type { OidcIssuer } from './oidc-issuer';
import { AwsError, xmlEscape } from './protocol';

export interface StsDeps {
  issuer: OidcIssuer;
  iam: Authorizer;
  account: string;
  credentials: CredentialStore;
}

const NS = 'https://sts.amazonaws.com/doc/2011-06-15/';
// AWS's words: the web identity is no principal with an ARN to name.
const notAuthorized = () => new AwsError('AccessDenied', 'Not authorized to perform sts:AssumeRoleWithWebIdentity', 403);

/** Handles one Query-protocol STS action; returns the XML body. */
export async function handleSts(action: string, params: URLSearchParams, headers: IncomingHttpHeaders, deps: StsDeps): Promise<string> {
  if (params.get('Version') !== '2011-06-15') {
    throw new AwsError('InvalidParameterValue', `Could not find operation ${action} for version ${params.get('Version') ?? 'NO_VERSION_SPECIFIED'}`);
  }
  switch (action) {
    case 'AssumeRoleWithWebIdentity':
      return assumeRoleWithWebIdentity(params, deps);
    case 'GetCallerIdentity':
      return getCallerIdentity(headers, deps);
    default:
      throw new AwsError('InvalidAction', `Could not find operation ${action} for version 2011-06-15`);
  }
}

async function assumeRoleWithWebIdentity(p: URLSearchParams, deps: StsDeps): Promise<string> {
  const roleArn = p.get('RoleArn') ?? '';
  const sessionName = p.get('RoleSessionName') ?? '';
  const token = p.get('WebIdentityToken') ?? '';
  // Lengths, patterns and the DurationSeconds range were checked against STS's model (models/checks.ts).
  const durationSeconds = Number(p.get('DurationSeconds') ?? '3600');

  const claims = await verifyToken(token, deps);
  const aud = [claims.aud ?? []].flat();
  // The fake's issuer stands for the account's OIDC provider, whose client ID list must hold the audience.
  const provider = deps.iam.config.oidcProvider;
  if (!aud.some((a) => provider.clientIds.includes(a))) throw new AwsError('InvalidIdentityToken', 'Incorrect token audience');

  const role = deps.iam.role(roleArn);
  const amr = claims['amr'];
  const trustClaims = { aud, sub: claims.sub ?? '', ...(Array.isArray(amr) ? { amr: amr.map(String) } : {}) };
  if (!role || !deps.iam.trusts(role, trustClaims)) throw notAuthorized();
  if (durationSeconds > (role.maxSessionDuration ?? 3600)) {
    throw new AwsError('ValidationError', 'The requested DurationSeconds exceeds the MaxSessionDuration set for this role.');
  }

  const roleName = roleArn.slice(roleArn.lastIndexOf('/') + 1);
  const accountId = roleArn.split(':')[4] ?? deps.account;
  const assumedArn = `arn:aws:sts::${accountId}:assumed-role/${roleName}/${sessionName}`;
  const c = deps.credentials.issue({ roleArn, sessionArn: assumedArn, federatedProvider: provider.arn }, durationSeconds);
  return (
    `<AssumeRoleWithWebIdentityResponse xmlns="${NS}"><AssumeRoleWithWebIdentityResult>` +
    `<Audience>${xmlEscape(aud[0] ?? '')}</Audience>` +
    `<AssumedRoleUser><AssumedRoleId>${roleId(roleArn)}:${xmlEscape(sessionName)}</AssumedRoleId><Arn>${xmlEscape(assumedArn)}</Arn></AssumedRoleUser>` +
    `<Provider>${xmlEscape(deps.issuer.issuer.replace(/^https?:\/\//, ''))}</Provider>` +
    `<Credentials><AccessKeyId>${c.accessKeyId}</AccessKeyId><SecretAccessKey>${c.secretAccessKey}</SecretAccessKey>` +
    `<SessionToken>${c.sessionToken}</SessionToken><Expiration>${c.expiration.toISOString()}</Expiration></Credentials>` +
    `<SubjectFromWebIdentityToken>${xmlEscape(claims.sub ?? '')}</SubjectFromWebIdentityToken>` +
    `</AssumeRoleWithWebIdentityResult><ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata>` +
    `</AssumeRoleWithWebIdentityResponse>`
  );
}

async function verifyToken(token: string, deps: StsDeps): Promise<JWTPayload> {
  let unverified: JWTPayload;
  try {
    decodeProtectedHeader(token);
    unverified = decodeJwt(token);
  } catch {
    throw new AwsError('InvalidIdentityToken', 'The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)');
  }
  if (unverified.iss !== deps.issuer.issuer) {
    throw new AwsError('InvalidIdentityToken', `No OpenIDConnect provider found in your account for ${unverified.iss ?? '(no iss claim)'}`);
  }
  try {
    // Signature only: expiry is checked here so that it yields AWS's own code and message.
    await compactVerify(token, deps.issuer.keySet, { algorithms: ['RS256'] });
    const payload = unverified;
    const now = Math.floor(Date.now() / 1000);
    if (payload.exp === undefined || payload.exp <= now) {
      throw new AwsError('ExpiredTokenException', `Token expired: current date/time ${now} must be before the expiration date/time ${payload.exp ?? 0}`);
    }
    return payload;
  } catch (e) {
    if (e instanceof AwsError) throw e;
    if (e instanceof errors.JWKSNoMatchingKey) {
      throw new AwsError('InvalidIdentityToken', "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements");
    }
    throw new AwsError('InvalidIdentityToken', 'The web identity token signature could not be verified');
  }
}

function getCallerIdentity(headers: IncomingHttpHeaders, deps: StsDeps): string {
  const who = deps.credentials.authenticate(headers);
  const arn = who.session?.sessionArn ?? `arn:aws:iam::${deps.account}:user/fake`;
  return (
    `<GetCallerIdentityResponse xmlns="${NS}"><GetCallerIdentityResult><Arn>${xmlEscape(arn)}</Arn>` +
    `<UserId>${who.accessKeyId}</UserId><Account>${arn.split(':')[4] ?? deps.account}</Account></GetCallerIdentityResult>` +
    `<ResponseMetadata><RequestId>${randomUUID()}</RequestId></ResponseMetadata></GetCallerIdentityResponse>`
  );
}
