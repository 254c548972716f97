/**
 * Tenants, decided by IAM's own rules: the template rendered for two tenants, its policies evaluated with
 * @cloud-copilot/iam-simulate. Each tenant's roles may do what its jobs and builds need on its own resources, and
 * nothing of it on the other tenant's.
 */
import { createValidatedPolicy, validateTrustPolicy } from '@cloud-copilot/iam-policy';
import { runSimulation, runUnsafeSimulation } from '@cloud-copilot/iam-simulate';
import { describe, expect, it } from 'vitest';
import { awsCalls, registryApiActions } from '../src/aws/permissions';
import { defaultContext, loadTemplate, render, type Json, type JsonObject, type Rendered } from './cfn';

const { accountId: acct, region } = defaultContext;
const template = loadTemplate();
const r = render(template, {
  AllowedSubjects: 'project_path:*:ref_type:branch:ref:main,project_path:*:ref_type:tag:ref:v*',
  EcrRepositories: 'team-a/app,team-b/app',
  Tenants: 'team-a,team-b',
  DockerServerComputeType: 'BUILD_GENERAL1_SMALL',
  SigningKey: 'true',
});

/** What belongs to one tenant, as the stack names it. */
function tenant(group: string, id: string) {
  const project = `image-builder-${group}`;
  const group_ = (name: string) => `arn:aws:logs:${region}:${acct}:log-group:/codebuild-image/${name}`;
  return {
    ciRole: `CiRole${id}`,
    buildRole: `BuildRole${id}`,
    buildRoleArn: `arn:aws:iam::${acct}:role/codebuild-image-build-${group}-${region}`,
    context: `arn:aws:s3:::codebuild-image-${acct}-${region}/contexts/${group}/${'0'.repeat(64)}.zip`,
    projects: [project, `${project}-arm64`, `${project}-docker-server`].map((p) => `arn:aws:codebuild:${region}:${acct}:project/${p}`),
    logGroups: [project, `${project}-arm64`, `${project}-docker-server`].map((p) => `${group_(p)}:*`),
    logStreams: [project, `${project}-arm64`, `${project}-docker-server`].map((p) => `${group_(p)}:log-stream:0123-abcd`),
    repository: `arn:aws:ecr:${region}:${acct}:repository/${group}/app`,
    secret: `arn:aws:secretsmanager:${region}:${acct}:secret:codebuild-image/${group}/npm-AbCdEf`,
    parameter: `arn:aws:ssm:${region}:${acct}:parameter/codebuild-image/${group}/npm-token`,
    signingKey: `arn:aws:kms:${region}:${acct}:key/codebuild-image-ImageSigningKey${id}-GENERATED`,
    sub: `project_path:${group}/app:ref_type:branch:ref:main`,
  };
}
type Tenant = ReturnType<typeof tenant>;
const a = tenant('team-a', 'teama');
const b = tenant('team-b', 'teamb');

type Request = [action: string, resource: string, context?: Record<string, string>];

/** What a tenant's job does with its CI role (src/aws/permissions.ts), on that tenant's resources. */
const jobRequests = (t: Tenant): Request[] => [
  ...awsCalls.HeadObjectCommand.actions.map((x): Request => [x, t.context]),
  ...awsCalls.Upload.actions.map((x): Request => [x, t.context]),
  ...t.projects.flatMap((p) => ['codebuild:StartBuild', 'codebuild:BatchGetBuilds', 'codebuild:StopBuild', 'codebuild:ListBuildsForProject'].map((x): Request => [x, p])),
  ...t.logStreams.map((s): Request => ['logs:GetLogEvents', s]),
  ...t.logGroups.map((g): Request => ['logs:StartLiveTail', g]),
  ...registryApiActions.map((x): Request => [x, t.repository]),
  ['secretsmanager:GetSecretValue', t.secret],
  ['ssm:GetParameter', t.parameter],
  ['kms:Sign', t.signingKey],
  ['kms:GetPublicKey', t.signingKey],
];

/** What a tenant's build does with its build role: its source, logs, pushes (and layer cache), secrets. */
const buildRequests = (t: Tenant): Request[] => [
  ['s3:GetObject', t.context],
  ...t.logStreams.flatMap((s) => ['logs:CreateLogStream', 'logs:PutLogEvents'].map((x): Request => [x, s])),
  ...['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer', 'ecr:InitiateLayerUpload',
    'ecr:UploadLayerPart', 'ecr:CompleteLayerUpload', 'ecr:PutImage'].map((x): Request => [x, t.repository]),
  ['secretsmanager:GetSecretValue', t.secret],
  ['ssm:GetParameters', t.parameter],
];

/** A role's identity policies: its own and the AWS::IAM::RolePolicy resources attached to it. */
function identityPolicies(rendered: Rendered, roleId: string): { name: string; policy: JsonObject }[] {
  const role = rendered.resources[roleId]!.Properties;
  const own = (role.Policies as { PolicyName: string; PolicyDocument: JsonObject }[]).map((p) => ({ name: p.PolicyName, policy: p.PolicyDocument }));
  const attached = Object.entries(rendered.resources)
    .filter(([, x]) => x.Type === 'AWS::IAM::RolePolicy' && x.Properties.RoleName === role.RoleName)
    .map(([id, x]) => ({ name: id, policy: x.Properties.PolicyDocument as JsonObject }));
  return [...own, ...attached];
}

/** KMS authorises a key's use only if its key policy allows it too (here: the account, and the tenant's CI role). */
const keyPolicies = Object.fromEntries(Object.entries(r.resources).filter(([, x]) => x.Type === 'AWS::KMS::Key')
  .map(([id, x]) => [`arn:aws:kms:${region}:${acct}:key/${defaultContext.stackName}-${id}-GENERATED`, x.Properties.KeyPolicy as JsonObject]));

async function decide(roleId: string, [action, resource, context = {}]: Request): Promise<string> {
  const roleName = String(r.resources[roleId]!.Properties.RoleName);
  const result = await runSimulation({
    request: {
      principal: `arn:aws:sts::${acct}:assumed-role/${roleName}/session`,
      action,
      resource: { resource, accountId: acct },
      contextVariables: context,
    },
    identityPolicies: identityPolicies(r, roleId),
    serviceControlPolicies: [],
    resourceControlPolicies: [],
    ...(keyPolicies[resource] ? { resourcePolicy: keyPolicies[resource] } : {}),
  }, { simulationMode: 'Strict' });
  if (result.resultType === 'error') throw new Error(`${action} on ${resource}: ${JSON.stringify(result.errors)}`);
  return result.overallResult;
}

async function decisions(roleId: string, requests: Request[]): Promise<string[]> {
  return Promise.all(requests.map(async (q) => `${await decide(roleId, q)} ${q[0]} ${q[1]}`));
}
const all = (verdict: string, requests: Request[]) => requests.map((q) => `${verdict} ${q[0]} ${q[1]}`);

describe("a tenant's roles, evaluated by iam-simulate", () => {
  it("let the tenant's job do everything it needs on the tenant's own resources", async () => {
    expect(await decisions(a.ciRole, jobRequests(a))).toEqual(all('Allowed', jobRequests(a)));
    expect(await decisions(b.ciRole, jobRequests(b))).toEqual(all('Allowed', jobRequests(b)));
  });

  it("let the tenant's builds read their context, write their logs, push and read their secrets", async () => {
    expect(await decisions(a.buildRole, buildRequests(a))).toEqual(all('Allowed', buildRequests(a)));
    expect(await decisions(b.buildRole, buildRequests(b))).toEqual(all('Allowed', buildRequests(b)));
  });

  it("deny the same calls on the other tenant's project, logs, context, repository, secret, parameter and key", async () => {
    expect(await decisions(a.ciRole, jobRequests(b))).toEqual(all('ImplicitlyDenied', jobRequests(b)));
    expect(await decisions(b.ciRole, jobRequests(a))).toEqual(all('ImplicitlyDenied', jobRequests(a)));
    expect(await decisions(a.buildRole, buildRequests(b))).toEqual(all('ImplicitlyDenied', buildRequests(b)));
  });

  it("cannot pass the other tenant's build role (or its own) to CodeBuild: builds run with their project's role", async () => {
    for (const role of [b.buildRoleArn, a.buildRoleArn]) {
      expect(await decide(a.ciRole, ['iam:PassRole', role, { 'iam:PassedToService': 'codebuild.amazonaws.com' }])).toBe('ImplicitlyDenied');
    }
    // Each project runs as its own tenant's build role.
    const serviceRoles = Object.values(r.resources).filter((x) => x.Type === 'AWS::CodeBuild::Project')
      .map((x) => `${String(x.Properties.Name)} ${String(x.Properties.ServiceRole)}`);
    expect(serviceRoles).toEqual([...a.projects.map((p) => `${p.slice(p.indexOf('/') + 1)} ${a.buildRoleArn}`),
      ...b.projects.map((p) => `${p.slice(p.indexOf('/') + 1)} ${b.buildRoleArn}`)]);
  });
});

describe("a tenant's CI role trust, evaluated by iam-simulate", () => {
  const provider = `arn:aws:iam::${acct}:oidc-provider/gitlab.com`;
  const assumes = (roleId: string, sub: string, aud = 'https://gitlab.com'): boolean => {
    const trust = JSON.parse(String(r.resources[roleId]!.Properties.AssumeRolePolicyDocument)) as Json;
    const policy = createValidatedPolicy(trust, validateTrustPolicy, { name: 'TrustPolicy' });
    expect(policy.errors).toEqual([]);
    return runUnsafeSimulation({
      request: {
        principal: provider,
        action: 'sts:AssumeRoleWithWebIdentity',
        resource: { resource: `arn:aws:iam::${acct}:role/${String(r.resources[roleId]!.Properties.RoleName)}`, accountId: acct },
        contextVariables: { 'gitlab.com:aud': aud, 'gitlab.com:sub': sub },
      },
      identityPolicies: [],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      resourcePolicy: policy,
    }, {}) === 'Allowed';
  };

  it("lets the tenant's allowed subjects in, and not another audience", () => {
    expect(assumes(a.ciRole, a.sub)).toBe(true);
    expect(assumes(a.ciRole, 'project_path:team-a/sub/tool:ref_type:tag:ref:v1.2.0')).toBe(true);
    expect(assumes(b.ciRole, b.sub)).toBe(true);
    expect(assumes(a.ciRole, a.sub, 'https://other.example')).toBe(false);
  });

  it("refuses the other tenant's subjects, groups whose name only starts alike, and refs AllowedSubjects leaves out", () => {
    expect(assumes(a.ciRole, b.sub)).toBe(false);
    expect(assumes(b.ciRole, a.sub)).toBe(false);
    expect(assumes(a.ciRole, 'project_path:team-ab/app:ref_type:branch:ref:main')).toBe(false);
    expect(assumes(a.ciRole, 'project_path:team-a/app:ref_type:branch:ref:feature')).toBe(false);
  });

  it('refuses a subject that belongs to no tenant on every role', () => {
    const roles = Object.entries(r.resources).filter(([, x]) => x.Type === 'AWS::IAM::Role' && x.Properties.AssumeRolePolicyDocument !== undefined
      && String(x.Properties.RoleName).startsWith('codebuild-image-ci-')).map(([id]) => id);
    expect(roles).toEqual([a.ciRole, b.ciRole]);
    for (const role of roles) expect(assumes(role, 'project_path:elsewhere/app:ref_type:branch:ref:main'), role).toBe(false);
  });
});

describe('the Tenants parameter', () => {
  const base = { AllowedSubjects: 'project_path:*:ref_type:branch:ref:main', EcrRepositories: 'team-a/app' };

  it('keeps role names within IAM\'s 64 characters for the longest group and region', () => {
    const longest = `${'a'.repeat(13)}/${'b'.repeat(13)}`;
    const x = render(template, { ...base, Tenants: longest }, { ...defaultContext, region: 'ap-southeast-5' });
    const names = Object.values(x.resources).filter((res) => res.Type === 'AWS::IAM::Role').map((res) => String(res.Properties.RoleName));
    expect(names).toHaveLength(2);
    for (const name of names) expect(name.length, name).toBeLessThanOrEqual(64);
    expect(() => render(template, { ...base, Tenants: `${longest}c` })).toThrow(/parameter Tenants/);
  });

  it('refuses names that would make invalid resource names, and a list that repeats a tenant', () => {
    for (const bad of ['Team-A', 'team.a', 'team--a', '/team-a', 'team-a/', 'job-tokens', 'job-tokens/x', '']) {
      expect(() => render(template, { ...base, Tenants: bad }), bad).toThrow(/parameter Tenants/);
    }
    expect(() => render(template, { ...base, Tenants: 'team-a,team-a' })).toThrow(/duplicate logical ID/);
  });

  it('refuses * among groups, and with tenants the lists and job tokens every tenant would share', () => {
    expect(() => render(template, { ...base, Tenants: '*,team-a' })).toThrow(/rule OneTeamAlone: Tenants: \* \(one trusted team\)/);
    const shared = {
      JobTokens: 'true',
      SecretArns: `arn:aws:secretsmanager:${region}:${acct}:secret:ci/npm-??????`,
      ParameterArns: `arn:aws:ssm:${region}:${acct}:parameter/ci/token`,
      SigningKeyArns: `arn:aws:kms:${region}:${acct}:key/1234abcd-12ab-34cd-56ef-1234567890ab`,
    };
    for (const [name, value] of Object.entries(shared)) {
      expect(() => render(template, { ...base, Tenants: 'team-a', [name]: value }), name).toThrow(new RegExp(`rule SharedOnlyForOneTeam: ${name}`));
      expect(() => render(template, { ...base, [name]: value }), name).not.toThrow();
    }
  });

  it('outputs each tenant\'s component inputs', () => {
    expect(Object.fromEntries(Object.entries(r.outputs).filter(([k]) => k.endsWith('teama')))).toEqual({
      RoleArnteama: `arn:aws:iam::${acct}:role/codebuild-image-ci-team-a-${region}`,
      ProjectNameteama: 'image-builder-team-a',
      ArmProjectNameteama: 'image-builder-team-a-arm64',
      DockerServerProjectNameteama: 'image-builder-team-a-docker-server',
      S3Prefixteama: 'contexts/team-a',
      SignWithteama: `arn:aws:kms:${region}:${acct}:alias/codebuild-image-signing-team-a`,
      SigningKeyArnteama: a.signingKey,
    });
  });
});
