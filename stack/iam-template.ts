/**
 * The account the stack plays: infra/cloudformation.yml rendered (infra/cfn.ts) for the stack's parameters, read
 * into what the fake AWS evaluates (roles, their trust and policies, the OIDC provider, resource policies) and the
 * CodeBuild projects it serves.
 */
import { isObject, loadTemplate, render, type Json, type JsonObject, type RenderContext, type Rendered } from '../infra/cfn';
import type { IamConfig, IamRole, PolicyDocument } from './fake-aws/iam/config';
import type { ProjectConfig } from './fake-aws/options';

export interface StackAccount {
  iam: IamConfig;
  projects: ProjectConfig[];
  /** The template's outputs (RoleArn, ProjectName, ArmProjectName…). */
  outputs: Record<string, Json>;
}

/** Renders the template for `parameters` and reads it. */
export function stackAccount(parameters: Record<string, string | string[]>, ctx: RenderContext): StackAccount {
  const rendered = render(loadTemplate(), parameters, ctx);
  return { iam: iamOf(rendered, ctx), projects: projectsOf(rendered), outputs: rendered.outputs };
}

type Resource = Rendered['resources'][string];

const ofType = (r: Rendered, type: string): [string, Resource][] => Object.entries(r.resources).filter(([, res]) => res.Type === type);

const asPolicy = (v: Json | undefined, what: string): PolicyDocument => {
  const doc = typeof v === 'string' ? (JSON.parse(v) as Json) : v;
  if (!isObject(doc) || doc.Statement === undefined) throw new Error(`${what}: not an IAM policy document`);
  return doc as PolicyDocument;
};

/** Roles with their inline policies and the RolePolicy/Policy/ManagedPolicy resources attached to them by name. */
export function iamOf(r: Rendered, ctx: RenderContext): IamConfig {
  const roles = new Map<string, IamRole>();
  for (const [id, { Properties: p }] of ofType(r, 'AWS::IAM::Role')) {
    if (p.ManagedPolicyArns !== undefined || p.PermissionsBoundary !== undefined) {
      throw new Error(`role ${id}: managed policy ARNs and permissions boundaries are not read by stack/iam-template.ts`);
    }
    const name = typeof p.RoleName === 'string' ? p.RoleName : `${ctx.stackName}-${id}-GENERATED`;
    roles.set(name, {
      arn: `arn:${ctx.partition}:iam::${ctx.accountId}:role${typeof p.Path === 'string' ? p.Path : '/'}${name}`,
      trustPolicy: asPolicy(p.AssumeRolePolicyDocument, `role ${id} trust policy`),
      policies: (Array.isArray(p.Policies) ? p.Policies : []).map((x) => {
        const policy = x as JsonObject;
        return { name: String(policy.PolicyName), document: asPolicy(policy.PolicyDocument, `role ${id} policy ${String(policy.PolicyName)}`) };
      }),
      ...(p.MaxSessionDuration === undefined ? {} : { maxSessionDuration: Number(p.MaxSessionDuration) }),
    });
  }
  const attach = (roleNames: Json | undefined, name: string, document: Json | undefined, id: string) => {
    for (const roleName of [roleNames ?? []].flat()) {
      const role = roles.get(String(roleName));
      if (!role) throw new Error(`${id}: role ${String(roleName)} is not a role of the template`);
      role.policies.push({ name, document: asPolicy(document, id) });
    }
  };
  for (const [id, { Properties: p }] of ofType(r, 'AWS::IAM::RolePolicy')) attach(p.RoleName, String(p.PolicyName), p.PolicyDocument, id);
  for (const [id, { Properties: p }] of [...ofType(r, 'AWS::IAM::Policy'), ...ofType(r, 'AWS::IAM::ManagedPolicy')]) {
    attach(p.Roles, String(p.PolicyName ?? p.ManagedPolicyName ?? id), p.PolicyDocument, id);
  }

  const providers = ofType(r, 'AWS::IAM::OIDCProvider');
  if (providers.length !== 1) throw new Error(`the template makes ${providers.length} OIDC providers: the stack needs CreateOidcProvider=true (one provider)`);
  const provider = providers[0]![1].Properties;
  const url = String(provider.Url).replace(/^https:\/\//, '');

  const resourcePolicies: Record<string, PolicyDocument> = {};
  for (const [id, { Properties: p }] of ofType(r, 'AWS::S3::BucketPolicy')) {
    resourcePolicies[`arn:${ctx.partition}:s3:::${String(p.Bucket)}`] = asPolicy(p.PolicyDocument, id);
  }
  return {
    roles: [...roles.values()],
    oidcProvider: { arn: `arn:${ctx.partition}:iam::${ctx.accountId}:oidc-provider/${url}`, url, clientIds: (provider.ClientIdList as Json[]).map(String) },
    resourcePolicies,
  };
}

/** The CodeBuild projects as the fake serves them: name, service role, environment, log group, timeouts. */
export function projectsOf(r: Rendered): ProjectConfig[] {
  return ofType(r, 'AWS::CodeBuild::Project').map(([id, { Properties: p }]) => {
    const env = (p.Environment ?? {}) as JsonObject;
    const source = (p.Source ?? {}) as JsonObject;
    const group = ((p.LogsConfig as JsonObject | undefined)?.CloudWatchLogs as JsonObject | undefined)?.GroupName;
    if (typeof p.Name !== 'string') throw new Error(`project ${id} has no Name: the stack serves projects by name`);
    return {
      name: p.Name,
      serviceRole: String(p.ServiceRole),
      ...(typeof group === 'string' ? { logGroupName: group } : {}),
      source: { type: source.Type === 'S3' ? 'S3' : 'NO_SOURCE', ...(typeof source.BuildSpec === 'string' ? { buildspec: source.BuildSpec } : {}) },
      environment: {
        type: String(env.Type),
        image: String(env.Image),
        computeType: String(env.ComputeType),
        privilegedMode: env.PrivilegedMode === true,
      },
      ...(p.TimeoutInMinutes === undefined ? {} : { timeoutInMinutes: Number(p.TimeoutInMinutes) }),
      ...(p.QueuedTimeoutInMinutes === undefined ? {} : { queuedTimeoutInMinutes: Number(p.QueuedTimeoutInMinutes) }),
    };
  });
}
