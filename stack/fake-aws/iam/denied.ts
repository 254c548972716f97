import { AwsError } from '../protocol';
import type { Decision } from './authorizer';

type Denial = Extract<Decision, { allowed: false }>;

/**
 * IAM's words for a refusal: `User: <session> is not authorized to perform: <action> on resource: <arn> because no
 * identity-based policy allows the <action> action`, or `with an explicit deny in an identity-based policy` /
 * `… in a resource-based policy`.
 */
export function deniedMessage(d: Denial): string {
  const { action, resource } = d.request;
  const because = d.why === 'implicit' ? `because no identity-based policy allows the ${action} action`
    : `with an explicit deny in ${d.why === 'resource' ? 'a resource-based' : 'an identity-based'} policy`;
  return `User: ${d.session.sessionArn} is not authorized to perform: ${action} on resource: ${resource} ${because}`;
}

/** The answer of a JSON 1.1 service (AccessDeniedException) or of STS (AccessDenied, 403). */
export function accessDenied(d: Denial, protocol: 'json' | 'query'): AwsError {
  return protocol === 'query' ? new AwsError('AccessDenied', deniedMessage(d), 403) : new AwsError('AccessDeniedException', deniedMessage(d));
}
