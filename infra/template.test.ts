import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  declaredResources, defaultContext, deployCommands, isObject, loadTemplate, parseTemplate, pseudoParameters, references, render,
  section, type Json, type JsonObject, type Rendered,
} from './cfn';
import { JOB_TOKEN_PATH } from '../src/inputs/aws-names';
import { checkResource, resourceSpec } from './spec-check';

const template = loadTemplate();
const base = {
  AllowedSubjects: 'project_path:group/app:ref_type:branch:ref:main,project_path:group/app:ref_type:tag:ref:v*',
  EcrRepositories: 'group/app',
};
const acct = defaultContext.accountId;
const region = defaultContext.region;

interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Action?: string | string[];
  NotAction?: unknown;
  Resource?: string | string[];
  NotResource?: unknown;
  Principal?: unknown;
  Condition?: Record<string, Record<string, string | string[]>>;
}
const list = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const statements = (doc: Json): Statement[] => {
  const d = (typeof doc === 'string' ? JSON.parse(doc) : doc) as { Statement: Statement | Statement[] };
  return list(d.Statement);
};

/** Every policy document of a rendered template, with where it sits and whether it is a trust policy. */
function policies(r: Rendered): { at: string; kind: 'identity' | 'trust' | 'resource'; statements: Statement[] }[] {
  const out: ReturnType<typeof policies> = [];
  for (const [id, res] of Object.entries(r.resources)) {
    const p = res.Properties;
    if (res.Type === 'AWS::IAM::Role') {
      out.push({ at: `${id} trust`, kind: 'trust', statements: statements(p.AssumeRolePolicyDocument!) });
      for (const pol of list(p.Policies as JsonObject[] | undefined)) {
        out.push({ at: `${id} ${String(pol.PolicyName)}`, kind: 'identity', statements: statements(pol.PolicyDocument!) });
      }
    }
    if (res.Type === 'AWS::IAM::RolePolicy' || res.Type === 'AWS::IAM::ManagedPolicy' || res.Type === 'AWS::IAM::Policy') {
      out.push({ at: id, kind: 'identity', statements: statements(p.PolicyDocument!) });
    }
    if (res.Type === 'AWS::S3::BucketPolicy') out.push({ at: id, kind: 'resource', statements: statements(p.PolicyDocument!) });
  }
  return out;
}

/** Identity-policy statements of one role, including attached AWS::IAM::RolePolicy resources. */
function roleStatements(r: Rendered, roleId: string): Statement[] {
  const role = r.resources[roleId]!;
  const own = list(role.Properties.Policies as JsonObject[] | undefined).flatMap((p) => statements(p.PolicyDocument!));
  const roleName = role.Properties.RoleName;
  const attached = Object.values(r.resources)
    .filter((x) => x.Type === 'AWS::IAM::RolePolicy' && x.Properties.RoleName === roleName)
    .flatMap((x) => statements(x.Properties.PolicyDocument!));
  return [...own, ...attached];
}

const actionsOf = (ss: Statement[]) => [...new Set(ss.flatMap((s) => list(s.Action)))].sort();
const trustOf = (r: Rendered) => statements(r.resources.CiRole!.Properties.AssumeRolePolicyDocument!);

/** The resources `action` is allowed on in `ss`. */
const resourcesFor = (ss: Statement[], action: string) => ss.filter((s) => list(s.Action).includes(action)).flatMap((s) => list(s.Resource));
const jobTokensArn = `arn:aws:ssm:${region}:${acct}:parameter${JOB_TOKEN_PATH}/*`;

// Parameter sets that switch every condition both ways.
const LISTS = 'secrets, parameters, thumbprints, immutable tags, no expiry, no arm64 project';
const SIGNING = "the stack's signing key, existing keys and ECR managed signing";
const listedKeys = [`arn:aws:kms:${region}:${acct}:key/1234abcd-12ab-34cd-56ef-1234567890ab`, `arn:aws:kms:${region}:210987654321:key/mrk-0123456789abcdef0123456789abcdef`];
const variants: Record<string, Record<string, string>> = {
  defaults: base,
  'existing provider, self-managed GitLab under a path, custom audience, existing repositories': {
    ...base, GitLabUrl: 'https://example.com/gitlab', OidcAudience: 'codebuild-image', CreateOidcProvider: 'false',
    CreateEcrRepositories: 'false',
  },
  [LISTS]: {
    ...base,
    JobTokens: 'true',
    SecretArns: `arn:aws:secretsmanager:${region}:${acct}:secret:ci/npm-??????`,
    ParameterArns: `arn:aws:ssm:${region}:${acct}:parameter/ci/token,arn:aws:ssm:${region}:${acct}:parameter/ci/other`,
    OidcThumbprints: '0123456789abcdef0123456789abcdef01234567', ImmutableTags: 'true', UntaggedImageDays: '0',
    CreateArmProject: 'false',
  },
  'a Docker Server project': { ...base, DockerServerComputeType: 'BUILD_GENERAL1_MEDIUM' },
  'pull-through caches of Docker Hub, ECR Public and GitLab.com': {
    ...base,
    DockerHubCredentialArn: `arn:aws:secretsmanager:${region}:${acct}:secret:ecr-pullthroughcache/docker-hub-AbCdEf`,
    EcrPublicCache: 'true',
    GitLabRegistryCredentialArn: `arn:aws:secretsmanager:${region}:${acct}:secret:ecr-pullthroughcache/gitlab-AbCdEf`,
  },
  'a pull-through cache of ECR Public only, base images of another account': {
    ...base, EcrPublicCache: 'true', PullRepositoryArns: `arn:aws:ecr:${region}:210987654321:repository/base/node`,
  },
  'two tenants': { ...base, Tenants: 'group/team-a,team-b' },
  [SIGNING]: {
    ...base,
    SigningKey: 'true',
    SigningKeyArns: listedKeys.join(','),
    EcrManagedSigning: 'true',
    EcrManagedSigningFilter: 'group/*',
  },
};
const rendered = Object.fromEntries(Object.entries(variants).map(([k, v]) => [k, render(template, v)]));

describe('cloudformation.yml structure', () => {
  it('parses with the intrinsic-function tags into long-form functions', () => {
    const [, , tenant] = section(template, 'Resources')['Fn::ForEach::Tenants'] as [string, Json, JsonObject];
    expect(JSON.stringify(tenant['CiRole&{Tenant}'])).toContain('"Fn::Sub"');
    expect(template.AWSTemplateFormatVersion).toBe('2010-09-09');
    expect(parseTemplate('a: !GetAtt Res.Arn\nb: !If [C, !Ref X, !Ref AWS::NoValue]\nc: !Condition D')).toEqual({
      a: { 'Fn::GetAtt': ['Res', 'Arn'] },
      b: { 'Fn::If': ['C', { Ref: 'X' }, { Ref: 'AWS::NoValue' }] },
      c: { Condition: 'D' },
    });
  });

  it('refuses YAML anchors and aliases, which CloudFormation does not accept', () => {
    expect(() => parseTemplate('a: &x 1\nb: *x')).toThrow(/anchor|alias/);
  });

  it('resolves every Ref, GetAtt, Sub variable, condition name and DependsOn', async () => {
    const params = Object.keys(section(template, 'Parameters'));
    const conditions = Object.keys(section(template, 'Conditions'));
    const resources = new Map(declaredResources(template).map((r) => [r.logicalId, r.body]));
    const problems: string[] = [];
    for (const ref of references(template)) {
      const known = ref.kind === 'Condition' ? conditions.includes(ref.name)
        : ref.kind === 'DependsOn' || ref.kind === 'GetAtt' ? resources.has(ref.name)
        : params.includes(ref.name) || pseudoParameters.includes(ref.name) || resources.has(ref.name)
          || ref.locals.includes(ref.name);
      if (!known) problems.push(`${ref.at}: ${ref.kind} ${ref.name} is not declared`);
      if (ref.attribute && resources.has(ref.name)) {
        const spec = await resourceSpec(String(resources.get(ref.name)!.Type));
        if (!spec || !(ref.attribute in spec.attributes)) problems.push(`${ref.at}: ${ref.name} has no attribute ${ref.attribute}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('gives parameters and resources distinct logical IDs, as CloudFormation requires', () => {
    const params = Object.keys(section(template, 'Parameters'));
    expect(declaredResources(template).map((r) => r.logicalId).filter((id) => params.includes(id))).toEqual([]);
  });

  it('uses every parameter and every condition', () => {
    const refs = references(template);
    const used = new Set(refs.map((r) => r.name));
    expect(Object.keys(section(template, 'Parameters')).filter((p) => !used.has(p))).toEqual([]);
    const usedConditions = new Set(refs.filter((r) => r.kind === 'Condition').map((r) => r.name));
    // Conditions used only by other conditions count too.
    expect(Object.keys(section(template, 'Conditions')).filter((c) => !usedConditions.has(c))).toEqual([]);
  });

  it('matches the CloudFormation resource specification (types, properties, required, allowed values)', async () => {
    const problems: string[] = [];
    for (const r of declaredResources(template)) problems.push(...(await checkResource(r.logicalId, r.body)));
    expect(problems).toEqual([]);
  });

  it('the specification check catches a wrong property, a missing required one and a bad value', async () => {
    const problems = await checkResource('Bad', {
      Type: 'AWS::CodeBuild::Project',
      Properties: {
        Source: { Type: 'NO_SOURCE', BuildSpecc: 'x' },
        Environment: { Type: 'LINUX_CONTAINER', Image: 'x', ComputeType: 'X', PrivilegedMode: 'yes' },
        ServiceRole: 'r',
      },
    });
    expect(problems).toEqual(expect.arrayContaining([
      'Bad.Properties.Source: unknown property BuildSpecc',
      'Bad.Properties: required property Artifacts missing',
      'Bad.Properties.Environment.PrivilegedMode: expected a boolean',
    ]));
    expect(await checkResource('T', { Type: 'AWS::S3::Bukket' })).toEqual(['T: unknown resource type AWS::S3::Bukket']);
  });

  it('gives every parameter a description and every list parameter a safe default or none', () => {
    for (const [name, p] of Object.entries(section(template, 'Parameters'))) {
      expect(isObject(p) && typeof p.Description === 'string', name).toBe(true);
    }
    const params = section(template, 'Parameters') as Record<string, JsonObject>;
    expect(params.AllowedSubjects!.Default).toBeUndefined(); // nobody is trusted by default
    expect(params.EcrRepositories!.Default).toBeUndefined();
    expect(params.SecretArns!.Default).toBe('');
    expect(params.ParameterArns!.Default).toBe('');
    expect(params.PullRepositoryArns!.Default).toBe('');
    expect(params.SigningKeyArns!.Default).toBe('');
  });

  it('renders every condition both ways across the variants', () => {
    for (const name of Object.keys(section(template, 'Conditions'))) {
      const values = new Set(Object.values(rendered).map((r) => r.conditions[name]));
      expect([...values].sort(), name).toEqual([false, true]);
    }
  });
});

describe('IAM policies', () => {
  // The only Allow statements whose Resource may be "*", with the reason.
  const starResourceExceptions: Record<string, string> = {
    'ecr:GetAuthorizationToken': 'has no resource type; IAM accepts only "*". Pushes are limited per repository.',
  };

  for (const [variant, r] of Object.entries(rendered)) {
    it(`names every action and resource (${variant})`, () => {
      const problems: string[] = [];
      for (const p of policies(r)) {
        for (const s of p.statements) {
          const where = `${p.at} ${s.Sid ?? ''}`;
          if (s.NotAction || s.NotResource) problems.push(`${where}: NotAction/NotResource`);
          const actions = list(s.Action);
          if (actions.length === 0) problems.push(`${where}: no Action`);
          for (const a of actions) {
            // A Deny may be broad (the TLS-only bucket statement denies s3:*); an Allow names each action.
            if (s.Effect === 'Allow' && (a.includes('*') || !/^[a-z0-9-]+:[A-Za-z0-9]+$/.test(a))) problems.push(`${where}: action ${a}`);
          }
          if (p.kind === 'trust' || s.Effect !== 'Allow') continue;
          for (const res of list(s.Resource)) {
            if (res === '*') {
              if (!actions.every((a) => a in starResourceExceptions)) problems.push(`${where}: Resource "*" for ${actions.join(',')}`);
              continue;
            }
            // Wildcards only after the resource's own name: object keys under a prefix, streams of a log group, the
            // random suffix of a secret ARN. Never in the service, region or account fields.
            const [arn, partition, service, reg, account, ...rest] = res.split(':');
            const fields = [arn, partition, service, reg, account].join(':');
            if (fields.includes('*') || fields.includes('?')) problems.push(`${where}: wildcard in ${res}`);
            if (/^(\*|[^/]*\/\*)$/.test(rest.join(':')) && service !== 's3') problems.push(`${where}: whole-service resource ${res}`);
          }
        }
      }
      expect(problems).toEqual([]);
    });
  }

  it('grants "*" resources only to the listed exceptions', () => {
    const star = Object.values(rendered).flatMap((r) => policies(r).flatMap((p) => p.statements))
      .filter((s) => s.Effect === 'Allow' && list(s.Resource).includes('*'));
    expect(actionsOf(star)).toEqual(Object.keys(starResourceExceptions).sort());
  });

  it('lets the CI role touch only its bucket prefix, its projects, their log groups, the named repositories, and job tokens and secrets if asked', () => {
    const r = rendered.defaults!;
    const resources = roleStatements(r, 'CiRole').flatMap((s) => list(s.Resource)).sort();
    expect(resources).toEqual([
      '*', // ecr:GetAuthorizationToken, which has no resource type
      `arn:aws:codebuild:${region}:${acct}:project/image-builder`,
      `arn:aws:codebuild:${region}:${acct}:project/image-builder-arm64`,
      `arn:aws:ecr:${region}:${acct}:repository/group/app`,
      `arn:aws:logs:${region}:${acct}:log-group:/codebuild-image/image-builder-arm64:*`,
      `arn:aws:logs:${region}:${acct}:log-group:/codebuild-image/image-builder:*`,
      `arn:aws:s3:::codebuild-image-${acct}-${region}/contexts/*`,
    ]);
    // Job tokens only with JobTokens=true; registry credentials only where the builds may read them too.
    const v = variants[LISTS]!;
    const withLists = roleStatements(rendered[LISTS]!, 'CiRole');
    expect(resourcesFor(withLists, 'ssm:PutParameter')).toEqual([jobTokensArn]);
    expect(resourcesFor(withLists, 'ssm:DeleteParameter')).toEqual([jobTokensArn]);
    expect(resourcesFor(withLists, 'secretsmanager:GetSecretValue')).toEqual([v.SecretArns]);
    expect(resourcesFor(withLists, 'ssm:GetParameter')).toEqual(v.ParameterArns!.split(','));
    expect(actionsOf(roleStatements(r, 'CiRole')).filter((a) => /^(secretsmanager|ssm):/.test(a))).toEqual([]);
    expect(withLists.flatMap((s) => list(s.Resource)).filter((x) => x.includes('arm64'))).toEqual([]);
  });

  it('lets builds read contexts, write their logs, push to the named repositories and read only the named secrets', () => {
    const build = roleStatements(rendered[LISTS]!, 'BuildRole');
    expect(resourcesFor(build, 's3:GetObject')).toEqual([`arn:aws:s3:::codebuild-image-${acct}-${region}/contexts/*`]);
    expect(resourcesFor(build, 'logs:PutLogEvents')).toEqual([`arn:aws:logs:${region}:${acct}:log-group:/codebuild-image/image-builder:*`]);
    expect(resourcesFor(build, 'ecr:PutImage')).toEqual([`arn:aws:ecr:${region}:${acct}:repository/group/app`]);
    expect(resourcesFor(build, 'secretsmanager:GetSecretValue')).toEqual([variants[LISTS]!.SecretArns]);
    expect(resourcesFor(build, 'ssm:GetParameters')).toEqual([jobTokensArn, ...variants[LISTS]!.ParameterArns!.split(',')]);
    // Without secret or parameter lists and job tokens, no statement for them at all.
    expect(actionsOf(roleStatements(rendered.defaults!, 'BuildRole')).filter((a) => /^(secretsmanager|ssm):/.test(a))).toEqual([]);
    expect(actionsOf(build).filter((a) => a.startsWith('iam:') || a.startsWith('sts:'))).toEqual([]);
  });

  it('lets builds pull through each cache rule made, and through no other', () => {
    const pullThrough = (r: Rendered) =>
      roleStatements(r, 'BuildRole').filter((s) => list(s.Action).includes('ecr:BatchImportUpstreamImage'));
    const all = pullThrough(rendered['pull-through caches of Docker Hub, ECR Public and GitLab.com']!);
    expect(all.flatMap((s) => list(s.Resource))).toEqual(
      ['docker-hub', 'ecr-public', 'gitlab'].map((prefix) => `arn:aws:ecr:${region}:${acct}:repository/${prefix}/*`),
    );
    expect(actionsOf(all)).toEqual([
      'ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:BatchImportUpstreamImage', 'ecr:CreateRepository', 'ecr:GetDownloadUrlForLayer',
    ]);
    expect(pullThrough(rendered['a pull-through cache of ECR Public only, base images of another account']!).flatMap((s) => list(s.Resource))).toEqual([
      `arn:aws:ecr:${region}:${acct}:repository/ecr-public/*`,
    ]);
    expect(pullThrough(rendered.defaults!)).toEqual([]);
  });

  it('lets builds pull, and only pull, from the other accounts\' repositories named', () => {
    const pulls = (r: Rendered) => roleStatements(r, 'BuildRole').filter((s) => s.Sid === 'PullBaseImages');
    const [s, ...more] = pulls(rendered['a pull-through cache of ECR Public only, base images of another account']!);
    expect(more).toEqual([]);
    expect(list(s?.Resource)).toEqual([`arn:aws:ecr:${region}:210987654321:repository/base/node`]);
    expect(actionsOf(s ? [s] : [])).toEqual(['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer']);
    expect(pulls(rendered.defaults!)).toEqual([]);
  });

  it('makes the pull-through cache rules asked for, with their upstream credentials', () => {
    const rules = (r: Rendered) => Object.values(r.resources).filter((x) => x.Type === 'AWS::ECR::PullThroughCacheRule').map((x) => x.Properties);
    const v = variants['pull-through caches of Docker Hub, ECR Public and GitLab.com']!;
    expect(rules(rendered['pull-through caches of Docker Hub, ECR Public and GitLab.com']!)).toEqual([
      { EcrRepositoryPrefix: 'docker-hub', UpstreamRegistry: 'docker-hub', UpstreamRegistryUrl: 'registry-1.docker.io', CredentialArn: v.DockerHubCredentialArn },
      { EcrRepositoryPrefix: 'ecr-public', UpstreamRegistry: 'ecr-public', UpstreamRegistryUrl: 'public.ecr.aws' },
      { EcrRepositoryPrefix: 'gitlab', UpstreamRegistry: 'gitlab-container-registry', UpstreamRegistryUrl: 'registry.gitlab.com', CredentialArn: v.GitLabRegistryCredentialArn },
    ]);
    expect(rules(rendered.defaults!)).toEqual([]);
  });

  it('makes one push policy (and one repository when asked) per repository name', () => {
    const r = render(template, { ...base, EcrRepositories: 'group/app,group/sub/tool' });
    const repos = Object.values(r.resources).filter((x) => x.Type === 'AWS::ECR::Repository');
    expect(repos.map((x) => x.Properties.RepositoryName)).toEqual(['group/app', 'group/sub/tool']);
    const push = resourcesFor(roleStatements(r, 'BuildRole'), 'ecr:PutImage');
    expect(push).toEqual([`arn:aws:ecr:${region}:${acct}:repository/group/app`, `arn:aws:ecr:${region}:${acct}:repository/group/sub/tool`]);
    for (const p of Object.values(r.resources).filter((x) => x.Type === 'AWS::IAM::RolePolicy')) {
      expect(String(p.Properties.PolicyName)).toMatch(/^[\w+=,.@-]{1,128}$/);
    }
    const existing = rendered['existing provider, self-managed GitLab under a path, custom audience, existing repositories']!;
    expect(Object.values(existing.resources).filter((x) => x.Type === 'AWS::ECR::Repository')).toEqual([]);
    // Per repository: the build role's push policy and the CI role's image-index policy.
    expect(Object.values(existing.resources).filter((x) => x.Type === 'AWS::IAM::RolePolicy').map((x) => x.Properties.PolicyName)).toEqual([
      'push-groupapp',
      'index-groupapp',
    ]);
  });

  it('lets CodeBuild (of this account only) assume the build role', () => {
    const [s, ...more] = statements(rendered.defaults!.resources.BuildRole!.Properties.AssumeRolePolicyDocument!);
    expect(more).toEqual([]);
    expect(s).toMatchObject({ Effect: 'Allow', Principal: { Service: 'codebuild.amazonaws.com' }, Action: 'sts:AssumeRole' });
    expect(s!.Condition).toEqual({ StringEquals: { 'aws:SourceAccount': acct } });
  });
});

describe('signing', () => {
  const r = rendered[SIGNING]!;
  const keyArn = `arn:aws:kms:${region}:${acct}:key/codebuild-image-ImageSigningKey-GENERATED`;
  const profileArn = `arn:aws:signer:${region}:${acct}:/signing-profiles/codebuild-image-SigningProfile-GENERATED`;
  const ciRoleArn = `arn:aws:iam::${acct}:role/codebuild-image-ci-${region}`;
  const kmsActions = (x: Rendered, roleId: string) => actionsOf(roleStatements(x, roleId)).filter((a) => a.startsWith('kms:'));
  const signerActions = (x: Rendered, roleId: string) => actionsOf(roleStatements(x, roleId)).filter((a) => a.startsWith('signer:'));

  it('makes an ECC_NIST_P256 SIGN_VERIFY key, kept on deletion, that the account administers and the CI role signs with', () => {
    const key = r.resources.ImageSigningKey!;
    expect(key.Properties).toMatchObject({ KeySpec: 'ECC_NIST_P256', KeyUsage: 'SIGN_VERIFY' });
    expect([key.DeletionPolicy, key.UpdateReplacePolicy]).toEqual(['Retain', 'Retain']);
    expect(statements(key.Properties.KeyPolicy!)).toEqual([
      { Sid: 'AccountAdministers', Effect: 'Allow', Principal: { AWS: `arn:aws:iam::${acct}:root` }, Action: 'kms:*', Resource: '*' },
      { Sid: 'CiRoleSigns', Effect: 'Allow', Principal: { AWS: ciRoleArn }, Action: ['kms:Sign', 'kms:GetPublicKey'], Resource: '*' },
    ]);
    expect(r.resources.ImageSigningKeyAlias!.Properties).toEqual({ AliasName: 'alias/codebuild-image-signing', TargetKeyId: 'codebuild-image-ImageSigningKey-GENERATED' });
    expect(r.outputs.SignWith).toBe(`arn:aws:kms:${region}:${acct}:alias/codebuild-image-signing`);
    expect(r.outputs.SigningKeyArn).toBe(keyArn);
  });

  it('lets the CI role sign with exactly the stack key and the listed keys, and with no key by default', () => {
    for (const action of ['kms:Sign', 'kms:GetPublicKey']) expect(resourcesFor(roleStatements(r, 'CiRole'), action), action).toEqual([keyArn, ...listedKeys]);
    expect(kmsActions(r, 'CiRole')).toEqual(['kms:GetPublicKey', 'kms:Sign']);
    const listedOnly = render(template, { ...base, SigningKeyArns: listedKeys[0]! });
    expect(resourcesFor(roleStatements(listedOnly, 'CiRole'), 'kms:Sign')).toEqual([listedKeys[0]]);
    expect(listedOnly.resources.ImageSigningKey).toBeUndefined();
    expect(listedOnly.outputs.SignWith).toBeUndefined();
    const none = rendered.defaults!;
    expect(kmsActions(none, 'CiRole')).toEqual([]);
    expect(Object.values(none.resources).filter((x) => x.Type.startsWith('AWS::KMS::'))).toEqual([]);
    expect(kmsActions(r, 'BuildRole')).toEqual([]);
  });

  it('lets the CI role push, per repository, the image index and the signatures (blobs, then their manifest)', () => {
    const repository = `arn:aws:ecr:${region}:${acct}:repository/group/app`;
    const forRepository = (x: Rendered) => roleStatements(x, 'CiRole').filter((s) => list(s.Resource).includes(repository));
    expect(actionsOf(forRepository(rendered.defaults!))).toEqual([
      'ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:CompleteLayerUpload', 'ecr:GetDownloadUrlForLayer',
      'ecr:InitiateLayerUpload', 'ecr:PutImage', 'ecr:UploadLayerPart',
    ]);
  });

  it('with ECR managed signing: a Notation profile, the registry rule for the filter, and both pushers may sign with the profile only', () => {
    expect(r.resources.SigningProfile!.Properties).toEqual({ PlatformId: 'Notation-OCI-SHA384-ECDSA' });
    expect(r.resources.EcrSigningConfiguration!.Properties).toEqual({
      Rules: [{ SigningProfileArn: profileArn, RepositoryFilters: [{ Filter: 'group/*', FilterType: 'WILDCARD_MATCH' }] }],
    });
    // The builds push the images, the job the index of a multi-platform image: ECR signs each as its pusher.
    for (const role of ['BuildRole', 'CiRole']) {
      expect(signerActions(r, role), role).toEqual(['signer:GetSigningProfile', 'signer:SignPayload']);
      expect(resourcesFor(roleStatements(r, role), 'signer:SignPayload'), role).toEqual([profileArn]);
      expect(resourcesFor(roleStatements(r, role), 'signer:GetSigningProfile'), role).toEqual([profileArn]);
      expect(signerActions(rendered.defaults!, role), role).toEqual([]);
    }
    expect(r.outputs.SigningProfileArn).toBe(profileArn);
    const none = rendered.defaults!;
    expect(Object.values(none.resources).filter((x) => x.Type === 'AWS::Signer::SigningProfile' || x.Type === 'AWS::ECR::SigningConfiguration')).toEqual([]);
    expect(render(template, { ...base, EcrManagedSigning: 'true' }).resources.EcrSigningConfiguration!.Properties).toMatchObject({
      Rules: [{ RepositoryFilters: [{ Filter: '*' }] }],
    });
  });
});

describe('CI role trust policy', () => {
  it('trusts only GitLab tokens with the audience and one of the subject patterns', () => {
    const [s, others, ...more] = trustOf(rendered.defaults!);
    expect(more).toEqual([]);
    // One team: no subject is outside project_path:*/*.
    expect(others!.Condition).toEqual({ StringNotLike: { 'gitlab.com:sub': 'project_path:*/*' } });
    expect(s).toMatchObject({
      Effect: 'Allow',
      Action: 'sts:AssumeRoleWithWebIdentity',
      Principal: { Federated: `arn:aws:iam::${acct}:oidc-provider/gitlab.com` },
    });
    expect(s!.Condition).toEqual({
      StringEquals: { 'gitlab.com:aud': 'https://gitlab.com' },
      StringLike: { 'gitlab.com:sub': ['project_path:group/app:ref_type:branch:ref:main', 'project_path:group/app:ref_type:tag:ref:v*'] },
    });
    expect(rendered.defaults!.resources.GitLabOidcProvider!.Properties).toEqual({ Url: 'https://gitlab.com', ClientIdList: ['https://gitlab.com'] });
  });

  it('uses an existing provider, an issuer path and a custom audience', () => {
    const r = rendered['existing provider, self-managed GitLab under a path, custom audience, existing repositories']!;
    expect(r.resources.GitLabOidcProvider).toBeUndefined();
    const [s] = trustOf(r);
    expect(s!.Principal).toEqual({ Federated: `arn:aws:iam::${acct}:oidc-provider/example.com/gitlab` });
    expect(s!.Condition).toEqual({
      StringEquals: { 'example.com/gitlab:aud': 'codebuild-image' },
      StringLike: { 'example.com/gitlab:sub': ['project_path:group/app:ref_type:branch:ref:main', 'project_path:group/app:ref_type:tag:ref:v*'] },
    });
    expect(r.outputs.OidcAudience).toBe('codebuild-image');
  });

  it('passes thumbprints only when given', () => {
    const r = rendered[LISTS]!;
    expect(r.resources.GitLabOidcProvider!.Properties.ThumbprintList).toEqual(['0123456789abcdef0123456789abcdef01234567']);
  });

  it('rejects GitLab URLs the condition keys could not be built from', () => {
    const pattern = new RegExp(String((section(template, 'Parameters').GitLabUrl as JsonObject).AllowedPattern));
    for (const ok of ['https://gitlab.com', 'https://example.com/gitlab']) expect(ok).toMatch(pattern);
    for (const bad of ['http://gitlab.com', 'https://gitlab.com/', 'gitlab.com', 'https://gitlab.com:8443']) expect(bad).not.toMatch(pattern);
  });

  it('keeps sessions at least as long as the component default (3600 s)', () => {
    expect(Number(rendered.defaults!.resources.CiRole!.Properties.MaxSessionDuration)).toBeGreaterThanOrEqual(3600);
  });
});

describe('context bucket', () => {
  const r = rendered.defaults!;
  const bucket = r.resources.ContextBucket!.Properties;

  it("is named like the component's default s3_bucket", () => {
    expect(bucket.BucketName).toBe(`codebuild-image-${acct}-${region}`);
    expect(r.outputs.S3Bucket).toBe(`codebuild-image-${acct}-${region}`);
  });

  it('is private, owner-enforced and encrypted at rest', () => {
    expect(bucket.PublicAccessBlockConfiguration).toEqual({
      BlockPublicAcls: true, BlockPublicPolicy: true, IgnorePublicAcls: true, RestrictPublicBuckets: true,
    });
    expect(bucket.OwnershipControls).toEqual({ Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] });
    expect(bucket.BucketEncryption).toEqual({ ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }] });
  });

  it('refuses requests without TLS on the bucket and its objects', () => {
    const [s] = statements(r.resources.ContextBucketPolicy!.Properties.PolicyDocument!);
    expect(r.resources.ContextBucketPolicy!.Properties.Bucket).toBe(bucket.BucketName);
    expect(s).toMatchObject({ Effect: 'Deny', Principal: '*', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } });
    expect(list(s!.Resource)).toEqual([`arn:aws:s3:::${String(bucket.BucketName)}`, `arn:aws:s3:::${String(bucket.BucketName)}/*`]);
  });

  it('expires contexts under the prefix and aborts incomplete multipart uploads', () => {
    const custom = render(template, { ...base, S3Prefix: 'ci/contexts', ContextRetentionDays: '3' });
    expect((custom.resources.ContextBucket!.Properties.LifecycleConfiguration as JsonObject).Rules).toEqual([{
      Id: 'expire-contexts', Status: 'Enabled', Prefix: 'ci/contexts/', ExpirationInDays: '3',
      AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
    }]);
    expect(roleStatements(custom, 'CiRole')[0]!.Resource).toBe(`arn:aws:s3:::codebuild-image-${acct}-${region}/ci/contexts/*`);
  });
});

describe('CodeBuild projects and repositories', () => {
  const r = rendered.defaults!;

  it('builds privileged on standard Linux images with explicit log groups', () => {
    expect(r.resources.Project!.Properties).toMatchObject({
      Name: 'image-builder',
      Source: { Type: 'NO_SOURCE' },
      Environment: { Type: 'LINUX_CONTAINER', Image: 'aws/codebuild/amazonlinux-x86_64-standard:5.0', PrivilegedMode: true },
      LogsConfig: { CloudWatchLogs: { Status: 'ENABLED', GroupName: '/codebuild-image/image-builder' } },
      ServiceRole: `arn:aws:iam::${acct}:role/codebuild-image-build-${region}`,
    });
    expect(r.resources.ArmProject!.Properties).toMatchObject({
      Name: 'image-builder-arm64',
      Environment: { Type: 'ARM_CONTAINER', Image: 'aws/codebuild/amazonlinux-aarch64-standard:3.0', PrivilegedMode: true },
      LogsConfig: { CloudWatchLogs: { GroupName: '/codebuild-image/image-builder-arm64' } },
    });
    expect(r.resources.LogGroup!.Properties.RetentionInDays).toBe('30');
    expect(String((r.resources.Project!.Properties.Source as JsonObject).BuildSpec)).toMatch(/^version: 0\.2/);
  });

  it('scans on push and expires untagged images in created repositories', () => {
    const repo = r.resources.Repositorygroupapp!.Properties;
    expect(repo).toMatchObject({ RepositoryName: 'group/app', ImageScanningConfiguration: { ScanOnPush: true }, ImageTagMutability: 'MUTABLE' });
    const policy = JSON.parse(String((repo.LifecyclePolicy as JsonObject).LifecyclePolicyText)) as { rules: JsonObject[] };
    expect(policy.rules).toEqual([expect.objectContaining({
      selection: { tagStatus: 'untagged', countType: 'sinceImagePushed', countUnit: 'days', countNumber: 14 },
      action: { type: 'expire' },
    })]);
    expect(r.resources.Repositorygroupapp!.DeletionPolicy).toBe('Retain');
    const other = rendered[LISTS]!;
    // Immutable, except the layer cache tag every build moves and the signatures each signing key adds to.
    expect(other.resources.Repositorygroupapp!.Properties).toMatchObject({
      ImageTagMutability: 'IMMUTABLE_WITH_EXCLUSION',
      ImageTagMutabilityExclusionFilters: [
        { ImageTagMutabilityExclusionFilterType: 'WILDCARD', ImageTagMutabilityExclusionFilterValue: 'buildcache*' },
        { ImageTagMutabilityExclusionFilterType: 'WILDCARD', ImageTagMutabilityExclusionFilterValue: 'sha256-*.sig' },
      ],
    });
    expect(repo.ImageTagMutabilityExclusionFilters).toBeUndefined();
    expect(other.resources.Repositorygroupapp!.Properties.LifecyclePolicy).toBeUndefined();
    expect(other.resources.ArmProject).toBeUndefined();
    expect(other.outputs.ArmProjectName).toBeUndefined();
  });

  it('makes a Docker Server project only when asked, with its own log group the CI role may read', () => {
    expect(r.resources.DockerServerProject).toBeUndefined();
    const d = rendered['a Docker Server project']!;
    expect(d.resources.DockerServerProject!.Properties).toMatchObject({
      Name: 'image-builder-docker-server',
      Environment: { DockerServer: { ComputeType: 'BUILD_GENERAL1_MEDIUM' } },
      LogsConfig: { CloudWatchLogs: { GroupName: '/codebuild-image/image-builder-docker-server' } },
    });
    const ci = roleStatements(d, 'CiRole').flatMap((s) => list(s.Resource));
    expect(ci).toEqual(expect.arrayContaining([
      `arn:aws:codebuild:${region}:${acct}:project/image-builder-docker-server`,
      `arn:aws:logs:${region}:${acct}:log-group:/codebuild-image/image-builder-docker-server:*`,
    ]));
    expect(d.outputs.DockerServerProjectName).toBe('image-builder-docker-server');
  });

  it('outputs the component inputs', () => {
    expect(r.outputs).toEqual({
      RoleArn: `arn:aws:iam::${acct}:role/codebuild-image-ci-${region}`,
      ProjectName: 'image-builder',
      ArmProjectName: 'image-builder-arm64',
      S3Bucket: `codebuild-image-${acct}-${region}`,
      S3Prefix: 'contexts',
      AwsRegion: region,
      OidcAudience: 'https://gitlab.com',
      Registry: `${acct}.dkr.ecr.${region}.amazonaws.com`,
    });
  });
});

describe('deploy commands in docs/aws-setup.md', () => {
  const awsSetup = path.join(import.meta.dirname, '..', 'docs', 'aws-setup.md');
  const commands = deployCommands(readFileSync(awsSetup, 'utf8'));

  it('reads the overrides of a documented command', () => {
    const [c] = deployCommands('aws cloudformation deploy \\\n  --template-file x \\\n  --parameter-overrides \\\n    A=1 \\\n    B=x,y\n');
    expect(c).toEqual({ A: '1', B: 'x,y' });
  });

  it('give every required parameter, only known ones, and render', () => {
    expect(commands.length, 'aws cloudformation deploy commands in docs/aws-setup.md').toBeGreaterThan(0);
    for (const overrides of commands) expect(() => render(template, overrides)).not.toThrow();
  });
});

describe('parameter constraints', () => {
  it('refuses values CloudFormation would refuse', () => {
    expect(() => render(template, { ...base, GitLabUrl: 'https://gitlab.com/' })).toThrow(/GitLabUrl/);
    expect(() => render(template, { ...base, ComputeType: 'BUILD_GENERAL1_HUGE' })).toThrow(/ComputeType/);
    expect(() => render(template, { ...base, MaxSessionDuration: '900' })).toThrow(/MaxSessionDuration/);
    expect(() => render(template, { ...base, S3Prefix: '/contexts/' })).toThrow(/S3Prefix/);
    expect(() => render(template, { ...base, S3Prefix: 'ctx*' })).toThrow(/S3Prefix/);
    expect(() => render(template, { ...base, S3Prefix: 'a/../b' })).toThrow(/S3Prefix/);
    expect(render(template, { ...base, S3Prefix: 'ci/build.contexts' }).parameters.S3Prefix).toBe('ci/build.contexts');
    expect(() => render(template, { EcrRepositories: 'a' })).toThrow(/AllowedSubjects has no default/);
    // IAM authorises the key, not an alias of it.
    expect(() => render(template, { ...base, SigningKeyArns: `arn:aws:kms:${region}:${acct}:alias/signing` })).toThrow(/SigningKeyArns/);
    for (const filter of ['Group/*', '/app', 'group//app', '']) {
      expect(() => render(template, { ...base, EcrManagedSigningFilter: filter }), filter).toThrow(/EcrManagedSigningFilter/);
    }
  });
});
