import { createValidatedPolicy, validateTrustPolicy } from '@cloud-copilot/iam-policy';
import { getDenialReasons, runSimulation, runUnsafeSimulation, type RequestAnalysis } from '@cloud-copilot/iam-simulate';
import { roleId, type IamConfig, type IamRole, type PolicyDocument } from './config';

/** Who makes a call: a session of a role (from the fake's STS, or CodeBuild's session of a build's role). */
export interface Session {
  roleArn: string;
  /** `arn:aws:sts::<account>:assumed-role/<role name>/<session name>`, as AWS names the caller. */
  sessionArn: string;
  /** The provider of the web identity the session came from, if any (aws:FederatedProvider). */
  federatedProvider?: string;
}

/** One authorisation request: an action on a resource ARN with the condition keys the service sets. */
export interface IamRequest {
  action: string;
  resource: string;
  context?: Record<string, string | string[]>;
}

export type Decision =
  | { allowed: true }
  | { allowed: false; request: IamRequest; session: Session; why: 'implicit' | 'identity' | 'resource' };

/** Thrown for what would make AWS's own evaluation meaningless: a policy IAM would refuse, an ARN of no known type. */
export class IamConfigError extends Error {}

/**
 * Decides calls with iam-simulate as IAM does: the session's role policies, with the resource's policy when there is
 * one (same account), and AWS's global condition keys for an assumed-role session.
 */
export class Authorizer {
  private readonly roles: Map<string, IamRole>;

  constructor(
    readonly config: IamConfig,
    private readonly where: { account: string; region: string },
  ) {
    this.roles = new Map(config.roles.map((r) => [r.arn, r]));
  }

  role(arn: string): IamRole | undefined {
    return this.roles.get(arn);
  }

  /**
   * The role's trust policy for AssumeRoleWithWebIdentity from the fake's provider, with the token's claims as
   * `<provider url>:aud`, `:sub` and `:amr`. iam-data lists no condition keys of a self-hosted provider, so this
   * runs iam-simulate's unvalidated engine on a trust policy validated first.
   */
  trusts(role: IamRole, claims: { aud: string[]; sub: string; amr?: string[] }): boolean {
    const policy = createValidatedPolicy(role.trustPolicy, validateTrustPolicy, { name: 'TrustPolicy' });
    if (policy.errors.length > 0) throw new IamConfigError(`trust policy of ${role.arn}: ${JSON.stringify(policy.errors)}`);
    const { arn, url } = this.config.oidcProvider;
    const context: Record<string, string | string[]> = {
      [`${url}:aud`]: claims.aud.length === 1 ? claims.aud[0]! : claims.aud,
      [`${url}:sub`]: claims.sub,
      ...(claims.amr ? { [`${url}:amr`]: claims.amr } : {}),
      ...this.globalKeys(),
    };
    const result = runUnsafeSimulation({
      request: { principal: arn, action: 'sts:AssumeRoleWithWebIdentity', resource: { resource: role.arn, accountId: this.where.account }, contextVariables: context },
      identityPolicies: [],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: policy,
    }, {});
    return result === 'Allowed';
  }

  /** Every request must be allowed; the first that is not is the answer. */
  async decideAll(session: Session, requests: IamRequest[]): Promise<Decision> {
    for (const request of requests) {
      const decision = await this.decide(session, request);
      if (!decision.allowed) return decision;
    }
    return { allowed: true };
  }

  async decide(session: Session, request: IamRequest): Promise<Decision> {
    const role = this.roles.get(session.roleArn);
    const result = await runSimulation({
      request: {
        principal: session.sessionArn,
        action: request.action,
        resource: { resource: request.resource, accountId: this.where.account },
        contextVariables: { ...this.sessionKeys(session), ...request.context },
      },
      identityPolicies: (role?.policies ?? []).map((p) => ({ name: p.name, policy: p.document })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...this.resourcePolicy(request.resource),
    }, { simulationMode: 'Strict' });
    if (result.resultType === 'error') {
      throw new IamConfigError(`cannot evaluate ${request.action} on ${request.resource}: ${JSON.stringify(result.errors)}`);
    }
    // A key the fake sets that IAM does not know for the action would be dropped quietly: the fake's own mistake.
    const ignored = (result.resultType === 'single' ? [result.result] : result.results).flatMap((r) => r.ignoredContextKeys ?? []);
    if (ignored.length > 0) throw new IamConfigError(`${request.action} does not take the condition keys ${ignored.join(', ')}`);
    if (result.overallResult === 'Allowed') return { allowed: true };
    const analyses: RequestAnalysis[] = result.resultType === 'single' ? [result.result.analysis] : result.results.map((r) => r.analysis);
    const explicit = analyses.flatMap((a) => getDenialReasons(a)).find((d) => d.denialType === 'Explicit');
    const why = explicit === undefined ? 'implicit' : explicit.policyType === 'resource' ? 'resource' : 'identity';
    return { allowed: false, request, session, why };
  }

  /** A resource's own policy, its bucket's for an S3 object, or KMS's default key policy for a key. */
  private resourcePolicy(resource: string): { resourcePolicy?: PolicyDocument } {
    const policies = this.config.resourcePolicies;
    const bucket = resource.startsWith('arn:aws:s3:::') ? resource.slice(0, resource.indexOf('/') < 0 ? undefined : resource.indexOf('/')) : undefined;
    const policy = policies[resource] ?? (bucket === undefined ? undefined : policies[bucket]) ?? (resource.startsWith('arn:aws:kms:') ? this.defaultKeyPolicy() : undefined);
    return policy === undefined ? {} : { resourcePolicy: policy };
  }

  /** KMS's default key policy: the account's root may do everything, so IAM policies decide. */
  private defaultKeyPolicy(): PolicyDocument {
    return {
      Version: '2012-10-17',
      Statement: [{ Sid: 'Enable IAM User Permissions', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${this.where.account}:root` }, Action: 'kms:*', Resource: '*' }],
    };
  }

  private sessionKeys(session: Session): Record<string, string> {
    return {
      ...this.globalKeys(),
      'aws:PrincipalArn': session.roleArn,
      'aws:PrincipalAccount': this.where.account,
      'aws:PrincipalType': 'AssumedRole',
      'aws:userid': `${roleId(session.roleArn)}:${session.sessionArn.slice(session.sessionArn.lastIndexOf('/') + 1)}`,
      'aws:PrincipalIsAWSService': 'false',
      'aws:ViaAWSService': 'false',
      'aws:ResourceAccount': this.where.account,
      ...(session.federatedProvider ? { 'aws:FederatedProvider': session.federatedProvider } : {}),
    };
  }

  /** The fake's http stands for AWS's TLS endpoints, so every call is aws:SecureTransport. */
  private globalKeys(): Record<string, string> {
    const now = new Date();
    return {
      'aws:SecureTransport': 'true',
      'aws:RequestedRegion': this.where.region,
      'aws:CurrentTime': now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      'aws:EpochTime': String(Math.floor(now.getTime() / 1000)),
    };
  }
}
