/**
 * AWS credentials: the GitLab OIDC token exchanged for a role session (AssumeRoleWithWebIdentity), or the
 * default credential chain when no token is given. The STS endpoint follows AWS_ENDPOINT_URL_STS like
 * every SDK client, which the local stack relies on.
 */
import { fromNodeProviderChain, fromWebToken } from '@aws-sdk/credential-providers';
import type { AwsCredentialIdentityProvider } from '@smithy/types';
import { ONCE_PER_JOB, requestHandler } from './clients';
import type { Output } from '../shared/console';
import type { GitLabJob, Settings } from '../inputs/settings';

const MAX_SESSION_NAME = 64;

/** `gitlab-<project path>-p<pipeline>-j<job>`, made valid for STS: 2–64 characters of [\w+=,.@-]. */
export function sessionName(job: GitLabJob): string {
  const clean = (s: string) =>
    s
      .normalize('NFKD')
      .replace(/[\u0300-\u036f]/g, '') // accents left over by NFKD
      .replace(/[^\w+=,.@-]+/g, '-')
      .replace(/-{2,}/g, '-')
      .replace(/^-|-$/g, '');
  // The ids make the name unique, so they are kept whole and the project path is shortened instead.
  const ids = [job.pipelineId && `p${clean(job.pipelineId)}`, job.jobId && `j${clean(job.jobId)}`].filter(Boolean).join('-');
  const suffix = ids ? `-${ids}` : '';
  const project = clean(job.projectPath ?? '');
  const head = project ? `gitlab-${project}` : 'gitlab';
  const room = MAX_SESSION_NAME - suffix.length;
  if (room < 'gitlab'.length) return `gitlab${suffix}`.slice(-MAX_SESSION_NAME);
  return `${head.slice(0, room).replace(/[-.]+$/, '')}${suffix}`;
}

export function resolveCredentials(s: Settings, out: Output): { provider: AwsCredentialIdentityProvider; identity: string } {
  if (s.idToken === undefined || s.roleArn === undefined) {
    // The chain's own STS and SSO clients go through the job's network too (instance metadata is never proxied: it is no HTTP client of the SDK's).
    return { provider: fromNodeProviderChain({ clientConfig: { requestHandler: requestHandler('once') } }), identity: 'default AWS credential chain' };
  }
  const roleSessionName = sessionName(s.gitlab);
  if (s.sessionDuration > 3600) {
    out.info(`Session duration ${s.sessionDuration}s needs the role's maximum session duration to be at least as long.`);
  }
  const provider = fromWebToken({
    roleArn: s.roleArn,
    webIdentityToken: s.idToken,
    roleSessionName,
    durationSeconds: s.sessionDuration,
    // The exchange happens once per job: it gets the patient retries (src/aws/clients.ts).
    clientConfig: { region: s.region, ...ONCE_PER_JOB, requestHandler: requestHandler('once') },
  });
  return { provider, identity: `role ${s.roleArn}, session ${roleSessionName}` };
}

/** The STS error code of `e`: the SDK's exception name, or `Code` on errors built from the raw response. */
function errorCode(e: unknown): string | undefined {
  if (typeof e !== 'object' || e === null) return undefined;
  const { name, Code } = e as { name?: unknown; Code?: unknown };
  return typeof Code === 'string' ? Code : typeof name === 'string' ? name : undefined;
}

/** Usual causes of a refused AssumeRoleWithWebIdentity, for the AwsStepError hint. */
export function explainAssumeRoleFailure(e: unknown, s: Settings): string | undefined {
  const code = errorCode(e)?.replace(/Exception$/, '');
  const issuer = s.gitlab.serverUrl?.replace(/^https?:\/\//, '') ?? '<gitlab host>';
  const audience = `aud: the token's audience is ${s.oidcAudience ?? '(unknown)'}; the role's trust policy must require ${issuer}:aud with exactly this value (oidc_audience).`;
  const subject = `sub: this job's subject is ${expectedSubject(s)}; the trust policy's ${issuer}:sub condition must match it (StringLike allows *).`;
  const provider = `provider: IAM needs an OIDC identity provider for ${s.gitlab.serverUrl ?? 'this GitLab'} (Federated principal arn:aws:iam::<account>:oidc-provider/${issuer}) whose audiences include ${s.oidcAudience ?? 'the token audience'}.`;
  const expiry = `expiry: the id_token is valid only while the job runs; a retried or long-waiting job needs a fresh one.`;
  const duration = `session_duration ${s.sessionDuration}s must not exceed the role's MaxSessionDuration (default 3600s).`;
  const lines = (title: string, causes: string[]) => [title, ...causes.map((c) => `  - ${c}`)].join('\n');
  switch (code) {
    case 'AccessDenied':
      return lines(`AWS refused to let this job assume ${s.roleArn}. Usual causes:`, [audience, subject, provider]);
    case 'InvalidIdentityToken':
    case 'IDPRejectClaim':
    case 'IDPRejectedClaim':
      return lines('AWS did not accept the GitLab OIDC token. Usual causes:', [provider, audience, expiry]);
    case 'IDPCommunicationError':
      return lines('AWS could not reach the OIDC issuer to verify the token. Usual cause:', [
        `reachability: ${s.gitlab.serverUrl ?? 'GitLab'}/.well-known/openid-configuration and its jwks_uri must be reachable from the internet over HTTPS with a public certificate.`,
      ]);
    case 'ExpiredToken':
      return lines('The GitLab OIDC token has expired. Usual causes:', [expiry, duration]);
    case 'ValidationError':
      return lines('AWS rejected the AssumeRoleWithWebIdentity parameters. Usual cause:', [duration]);
    default:
      return undefined;
  }
}

/** The `sub` claim GitLab puts in this job's token. CI_COMMIT_REF_TYPE is not predefined, so a tag is detected by CI_COMMIT_TAG. */
export function expectedSubject(s: Settings, env: NodeJS.ProcessEnv = process.env): string {
  const refType = env.CI_COMMIT_TAG ? 'tag' : 'branch';
  return `project_path:${s.gitlab.projectPath ?? '<group>/<project>'}:ref_type:${refType}:ref:${s.gitlab.ref ?? '<ref>'}`;
}
