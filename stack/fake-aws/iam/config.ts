/**
 * The account's IAM as the fake evaluates it: roles (trust policy, permissions policies), the OIDC provider that the
 * fake's issuer stands for, and resource policies. The stack builds it from infra/cloudformation.yml
 * (stack/iam-template.ts); a fake configured with plain `roles` gets roles that may do everything.
 */

import { createHash } from 'node:crypto';

/** An IAM policy document (validated by iam-simulate when used). */
export type PolicyDocument = { Version?: string; Statement: unknown[] | Record<string, unknown> };

export interface IamRole {
  arn: string;
  trustPolicy: PolicyDocument;
  /** Inline and attached policies, by name. */
  policies: { name: string; document: PolicyDocument }[];
  /** MaxSessionDuration in seconds (default 3600, as AWS). */
  maxSessionDuration?: number;
}

export interface IamConfig {
  roles: IamRole[];
  /**
   * The IAM OIDC provider the fake's issuer stands for: its ARN (the trust policies' Federated principal), its URL
   * without https:// (the prefix of the condition keys `<url>:aud`, `:sub`, `:amr`) and its client ID list.
   */
  oidcProvider: { arn: string; url: string; clientIds: string[] };
  /** Resource-based policies by the ARN of their resource: a bucket policy under `arn:aws:s3:::<bucket>`. */
  resourcePolicies: Record<string, PolicyDocument>;
}

/** What `roles` of FakeAwsOptions describes: a trust on `aud` and `sub` only. */
export interface SimpleRole {
  arn: string;
  audience: string | string[];
  subPatterns: string[];
  maxSessionDuration?: number;
}

export const ALLOW_ALL: PolicyDocument = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: '*', Resource: '*' }] };

/** The provider URL of a fake configured with plain `roles`, which names no GitLab. */
const SIMPLE_PROVIDER_URL = 'gitlab.fake';

/**
 * IAM for plain `roles`: each role trusts the provider for its audiences and `sub` patterns (StringEquals aud,
 * StringLike sub) and may do everything; the provider's client IDs are all roles' audiences.
 */
export function simpleIam(roles: SimpleRole[], account: string): IamConfig {
  const arn = `arn:aws:iam::${account}:oidc-provider/${SIMPLE_PROVIDER_URL}`;
  return {
    oidcProvider: { arn, url: SIMPLE_PROVIDER_URL, clientIds: [...new Set(roles.flatMap((r) => [r.audience].flat()))] },
    roles: roles.map((r) => ({
      arn: r.arn,
      ...(r.maxSessionDuration === undefined ? {} : { maxSessionDuration: r.maxSessionDuration }),
      trustPolicy: {
        Version: '2012-10-17',
        Statement: [{
          Effect: 'Allow',
          Principal: { Federated: arn },
          Action: 'sts:AssumeRoleWithWebIdentity',
          Condition: {
            StringEquals: { [`${SIMPLE_PROVIDER_URL}:aud`]: [r.audience].flat() },
            StringLike: { [`${SIMPLE_PROVIDER_URL}:sub`]: r.subPatterns },
          },
        }],
      },
      policies: [{ name: 'fake-allow-all', document: ALLOW_ALL }],
    })),
    resourcePolicies: {},
  };
}

/** A role's unique ID (AROA…), stable for its ARN: the first part of aws:userid and of AssumedRoleId. */
export function roleId(arn: string): string {
  return 'AROA' + createHash('sha256').update(arn).digest('hex').slice(0, 17).toUpperCase();
}
