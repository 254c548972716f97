import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { awsCalls, ciRoleActions, trustPolicyAction, webIdentityProviders, type AwsCall } from '../src/aws/permissions';
import { loadTemplate, render, type Rendered } from './cfn';
import { scanProgram, scanSource } from './sdk-calls';

const root = path.join(import.meta.dirname, '..');
const program = scanProgram(root);
const uses = [...program.entries()].flatMap(([file, us]) => us.map((u) => ({ file, ...u })));

// Credential providers that make no AWS call needing a permission of the CI role.
const providersWithoutPermissions = ['fromNodeProviderChain', 'fromEnv', 'fromIni', 'fromContainerMetadata', 'fromInstanceMetadata'];

describe('the SDK call scanner', () => {
  it('finds commands through aliases, Upload, paginators and credential providers, and ignores comments and strings', () => {
    const found = scanSource('x.ts', `
      import { StartBuildCommand as Start, CodeBuildClient } from '@aws-sdk/client-codebuild';
      import { paginateGetLogEvents } from '@aws-sdk/client-cloudwatch-logs';
      import { Upload } from '@aws-sdk/lib-storage';
      import { fromWebToken } from '@aws-sdk/credential-providers';
      import { LocalCommand } from './local';
      // new StopBuildCommand({}) in a comment
      const s = 'new HeadObjectCommand(';
      await cb.send(new Start({ projectName: 'p' }));
      new Upload({ client, params });
      new LocalCommand();
    `);
    expect(found.map((u) => `${u.kind}:${u.name}`).sort()).toEqual([
      'command:GetLogEventsCommand', 'command:StartBuildCommand', 'credential-provider:fromWebToken', 'upload:Upload',
    ]);
  });

  it('follows a destructured import() of a module that re-exports commands from the SDK', () => {
    const modules: Record<string, string> = {
      './sdk/ssm': "export { GetParameterCommand as Get, SSMClient } from '@aws-sdk/client-ssm';",
      './local': "export { LocalCommand } from './elsewhere';",
    };
    const found = scanSource('x.ts', `
      export async function read() {
        const { Get, SSMClient } = await import('./sdk/ssm');
        const { LocalCommand } = await import('./local');
        await new SSMClient({}).send(new Get({ Name: 'p' }));
        new LocalCommand();
      }
    `, (spec) => modules[spec]);
    expect(found).toEqual([{ name: 'GetParameterCommand', kind: 'command', module: '@aws-sdk/client-ssm' }]);
  });

  it('flags aggregated clients and namespace imports, whose calls it cannot see', () => {
    const found = scanSource('x.ts', `
      import { CodeBuild } from '@aws-sdk/client-codebuild';
      import * as s3 from '@aws-sdk/client-s3';
    `);
    expect(found.map((u) => u.kind)).toEqual(['unsupported', 'unsupported']);
  });
});

describe('src/aws/permissions.ts matches the code', () => {
  it('lists every AWS call the code makes', () => {
    const problems = uses.flatMap((u) => {
      if (u.kind === 'unsupported') return [`${u.file}: ${u.name} from ${u.module} hides its calls; use <Service>Client and commands`];
      if (u.kind === 'credential-provider') {
        return (webIdentityProviders as readonly string[]).includes(u.name) || providersWithoutPermissions.includes(u.name) ? []
          : [`${u.file}: credential provider ${u.name} is not classified in infra/permissions.test.ts or src/aws/permissions.ts`];
      }
      if ((webIdentityProviders as readonly string[]).includes(u.name)) return [];
      return u.name in awsCalls ? [] : [`${u.file}: ${u.name} is missing from src/aws/permissions.ts`];
    });
    expect(problems).toEqual([]);
  });

  for (const [name, call] of Object.entries(awsCalls) as [string, AwsCall][]) {
    const written = call.usedIn.filter((f) => existsSync(path.join(root, f)));
    const callers = [...new Set(uses.filter((u) => u.name === name).map((u) => u.file))];
    // Until one of the modules that should make the call exists, there is nothing to compare with.
    it.skipIf(written.length === 0 && callers.length === 0)(`${name} is made where listed (${call.usedIn.join(', ')})`, () => {
      expect(callers.length, `${name} is listed but no module calls it: remove it`).toBeGreaterThan(0);
      expect(callers.filter((f) => !call.usedIn.includes(f)), `update usedIn of ${name}`).toEqual([]);
    });
  }

  it('maps every call to well-formed IAM actions', () => {
    for (const action of ciRoleActions()) expect(action).toMatch(/^(s3|codebuild|logs|ecr|ssm|secretsmanager|kms):[A-Z][A-Za-z]+$/);
  });
});

describe('the CI role in infra/cloudformation.yml', () => {
  // With job tokens, secret and parameter lists and signing keys, so that every optional statement of the program's
  // calls is rendered too. Not with EcrManagedSigning: its signer actions are ECR's, signing a push as the pusher
  // (infra/template.test.ts checks them).
  const r = render(loadTemplate(), {
    AllowedSubjects: 'project_path:g/p:ref_type:branch:ref:main',
    EcrRepositories: 'g/p',
    JobTokens: 'true',
    SecretArns: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:ci/registry-??????',
    ParameterArns: 'arn:aws:ssm:eu-west-1:123456789012:parameter/ci/registry',
    SigningKey: 'true',
    SigningKeyArns: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
  });
  const role = r.resources.CiRole!.Properties;

  it('grants exactly the actions of src/aws/permissions.ts', () => {
    expect(grantedTo(r, 'CiRole')).toEqual(ciRoleActions());
  });

  it('allows the web identity exchange in its trust policy, not in its permissions', () => {
    const trust = JSON.parse(String(role.AssumeRolePolicyDocument)) as { Statement: { Action: string }[] };
    expect([...new Set(trust.Statement.map((s) => s.Action))]).toEqual([trustPolicyAction]);
    expect(ciRoleActions().filter((a) => a.startsWith('sts:'))).toEqual([]);
  });
});

describe("each tenant's CI role in infra/cloudformation.yml", () => {
  // Job tokens are refused with tenants (every build could read every job's token), so their two actions are not
  // granted; the program reports the missing permission when a job asks for them.
  const jobTokenActions: string[] = [...awsCalls.PutParameterCommand.actions, ...awsCalls.DeleteParameterCommand.actions];
  const r = render(loadTemplate(), {
    AllowedSubjects: 'project_path:*:ref_type:branch:ref:main',
    EcrRepositories: 'team-a/app',
    Tenants: 'team-a,group/team-b',
    SigningKey: 'true',
  });

  for (const tenant of ['teama', 'groupteamb']) {
    it(`grants exactly the actions of src/aws/permissions.ts but job tokens' (${tenant})`, () => {
      expect(grantedTo(r, `CiRole${tenant}`)).toEqual(ciRoleActions().filter((a) => !jobTokenActions.includes(a)));
    });
  }
});

/** The actions of a role's own policies and of the policies attached to it (per repository, signing keys). */
function grantedTo(r: Rendered, roleId: string): string[] {
  type Doc = { Statement: { Action: string | string[] }[] };
  const role = r.resources[roleId]!.Properties;
  const attached = Object.values(r.resources).filter((x) => x.Properties.RoleName === role.RoleName || x.Properties.Roles !== undefined);
  expect([...new Set(attached.map((x) => x.Type))].sort()).toEqual(['AWS::IAM::Role', 'AWS::IAM::RolePolicy']);
  const docs = [
    ...(role.Policies as { PolicyDocument: Doc }[]).map((p) => p.PolicyDocument),
    ...attached.filter((x) => x.Type === 'AWS::IAM::RolePolicy').map((x) => x.Properties.PolicyDocument as unknown as Doc),
  ];
  const granted = docs.flatMap((d) => d.Statement.flatMap((s) => (Array.isArray(s.Action) ? s.Action : [s.Action])));
  return [...new Set(granted)].sort();
}
