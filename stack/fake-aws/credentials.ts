import { randomBytes } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import type { Session } from './iam/authorizer';
import { AwsError } from './protocol';

export interface IssuedCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: Date;
  /** The role session the credentials act as: every call made with them is evaluated against its role. */
  session: Session;
}

/**
 * Temporary credentials handed out by the fake STS. Signed calls using an ASIA key must present one of
 * these (with its session token, unexpired); other keys are taken as long-term keys and accepted.
 * Signatures themselves are not verified.
 */
export class CredentialStore {
  private readonly issued = new Map<string, IssuedCredentials>();

  constructor(private readonly region: string) {}

  issue(session: Session, durationSeconds: number, now = Date.now()): IssuedCredentials {
    const creds: IssuedCredentials = {
      accessKeyId: 'ASIA' + randomBytes(8).toString('hex').toUpperCase(),
      secretAccessKey: randomBytes(30).toString('base64'),
      sessionToken: randomBytes(96).toString('base64'),
      expiration: new Date(now + durationSeconds * 1000),
      session,
    };
    this.issued.set(creds.accessKeyId, creds);
    return creds;
  }

  /**
   * The caller's identity, or the error AWS gives for a missing/unknown/expired/mis-scoped credential. A key the
   * fake's STS did not issue has no session: the fake takes it as an administrator's and evaluates nothing.
   */
  authenticate(headers: IncomingHttpHeaders, now = Date.now()): { accessKeyId: string; session?: Session } {
    const auth = headers['authorization'];
    if (!auth) throw new AwsError('MissingAuthenticationTokenException', 'Missing Authentication Token');
    const m = /Credential=([^/,\s]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/.exec(auth);
    if (!m) throw new AwsError('IncompleteSignatureException', 'Authorization header requires a SigV4 Credential scope.');
    const [, accessKeyId = '', region] = m;
    if (region !== this.region) {
      throw new AwsError('InvalidSignatureException', `Credential should be scoped to a valid region, not '${region}'. `);
    }
    if (!accessKeyId.startsWith('ASIA')) return { accessKeyId };
    const creds = this.issued.get(accessKeyId);
    if (!creds || headers['x-amz-security-token'] !== creds.sessionToken) {
      throw new AwsError('UnrecognizedClientException', 'The security token included in the request is invalid.');
    }
    if (creds.expiration.getTime() <= now) {
      throw new AwsError('ExpiredTokenException', 'The security token included in the request is expired');
    }
    return { accessKeyId, session: creds.session };
  }
}
