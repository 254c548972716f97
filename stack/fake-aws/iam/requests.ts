import type { IamRequest } from './authorizer';

/** How the fake names resources: ARNs as the services build them for IAM. */
export interface Names {
  region: string;
  account: string;
  /** The ARN of the key a KMS KeyId names (throws KMS's NotFoundException for none). */
  keyArn(keyId: unknown): string;
}

type Input = Record<string, unknown>;

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

export const projectArn = (n: Pick<Names, 'region' | 'account'>, project: string) => `arn:aws:codebuild:${n.region}:${n.account}:project/${project}`;

/** A parameter's ARN: a name with a leading slash keeps it as the path (`parameter/a/b`), as SSM builds it. */
export const parameterArn = (n: Pick<Names, 'region' | 'account'>, name: string) =>
  `arn:aws:ssm:${n.region}:${n.account}:parameter/${name.replace(/^\//, '')}`;

/** The suffix the fake's Secrets Manager gives every secret's ARN (AWS makes a random one). */
export const SECRET_SUFFIX = '-AbCdEf';

export const secretArn = (n: Pick<Names, 'region' | 'account'>, id: string) =>
  id.startsWith('arn:') ? (/-[A-Za-z0-9]{6}$/.test(id) ? id : `${id}${SECRET_SUFFIX}`) : `arn:aws:secretsmanager:${n.region}:${n.account}:secret:${id}${SECRET_SUFFIX}`;

/**
 * CloudWatch Logs authorises an action on a log group against `…:log-group:<name>:*`, the ARN CloudFormation's
 * LogGroup.Arn returns and policies name.
 */
export const logGroupArn = (n: Pick<Names, 'region' | 'account'>, group: string) => `arn:aws:logs:${n.region}:${n.account}:log-group:${group}:*`;
export const logStreamArn = (n: Pick<Names, 'region' | 'account'>, group: string, stream: string) =>
  `arn:aws:logs:${n.region}:${n.account}:log-group:${group}:log-stream:${stream}`;

/** The project of a build id (`<project>:<uuid>`), as CodeBuild authorises BatchGetBuilds and StopBuild. */
const projectOfBuild = (id: string) => id.slice(0, Math.max(0, id.lastIndexOf(':')));

/**
 * The IAM requests a call of a JSON 1.1 service makes: its action on each resource it names, with the condition keys
 * the service sets from the request. StartBuild's `serviceRoleOverride` adds iam:PassRole.
 */
export function iamRequests(service: string, operation: string, input: Input, n: Names): IamRequest[] {
  const action = `${service}:${operation}`;
  switch (service) {
    case 'codebuild':
      return codebuildRequests(operation, input, n);
    case 'logs': {
      if (operation === 'StartLiveTail') {
        const groups = Array.isArray(input.logGroupIdentifiers) ? input.logGroupIdentifiers.filter((g): g is string => typeof g === 'string') : [];
        return groups.map((g) => ({ action, resource: logGroupArn(n, g.replace(/^arn:[^:]+:logs:[^:]*:[^:]*:log-group:/, '').replace(/:\*$/, '')) }));
      }
      const group = str(input.logGroupName) ?? str(input.logGroupIdentifier)?.replace(/^arn:.*:log-group:/, '').replace(/:\*$/, '') ?? '';
      return [{ action, resource: logStreamArn(n, group, str(input.logStreamName) ?? '') }];
    }
    case 'ssm': {
      const overwrite = operation === 'PutParameter' && typeof input.Overwrite === 'boolean' ? { 'ssm:Overwrite': String(input.Overwrite) } : undefined;
      return [{ action, resource: parameterArn(n, str(input.Name) ?? ''), ...(overwrite ? { context: overwrite } : {}) }];
    }
    case 'secretsmanager': {
      const id = str(input.SecretId) ?? '';
      const context: Record<string, string> = { 'secretsmanager:SecretId': id };
      if (str(input.VersionStage)) context['secretsmanager:VersionStage'] = String(input.VersionStage);
      if (str(input.VersionId)) context['secretsmanager:VersionId'] = String(input.VersionId);
      return [{ action, resource: secretArn(n, id), context }];
    }
    case 'kms': {
      const context: Record<string, string> = { 'kms:CallerAccount': n.account };
      const keyId = str(input.KeyId) ?? '';
      const alias = /(^|:)alias\/.+$/.exec(keyId)?.[0].replace(/^:/, '');
      if (alias) context['kms:RequestAlias'] = alias;
      if (operation === 'Sign' || operation === 'Verify') {
        if (str(input.SigningAlgorithm)) context['kms:SigningAlgorithm'] = String(input.SigningAlgorithm);
        context['kms:MessageType'] = str(input.MessageType) ?? 'RAW';
      }
      return [{ action, resource: n.keyArn(input.KeyId), context }];
    }
    default:
      return [];
  }
}

function codebuildRequests(operation: string, input: Input, n: Names): IamRequest[] {
  const action = `codebuild:${operation}`;
  switch (operation) {
    case 'StartBuild': {
      const project = str(input.projectName) ?? '';
      const role = str(input.serviceRoleOverride);
      const context: Record<string, string> = {};
      if (role) context['codebuild:serviceRole'] = role;
      if (str(input.computeTypeOverride)) context['codebuild:environment.computeType'] = String(input.computeTypeOverride);
      if (str(input.environmentTypeOverride)) context['codebuild:environment.type'] = String(input.environmentTypeOverride);
      if (str(input.imageOverride)) context['codebuild:environment.image'] = String(input.imageOverride);
      if (typeof input.privilegedModeOverride === 'boolean') context['codebuild:environment.privilegedMode'] = String(input.privilegedModeOverride);
      return [
        { action, resource: projectArn(n, project), context },
        ...(role ? [{ action: 'iam:PassRole', resource: role, context: { 'iam:PassedToService': 'codebuild.amazonaws.com', 'iam:AssociatedResourceArn': projectArn(n, project) } }] : []),
      ];
    }
    case 'BatchGetBuilds': {
      const ids = Array.isArray(input.ids) ? input.ids.filter((i): i is string => typeof i === 'string') : [];
      return [...new Set(ids.map(projectOfBuild))].map((p) => ({ action, resource: projectArn(n, p) }));
    }
    case 'StopBuild':
      return [{ action, resource: projectArn(n, projectOfBuild(str(input.id) ?? '')) }];
    default:
      return [{ action, resource: projectArn(n, str(input.projectName) ?? '') }];
  }
}
