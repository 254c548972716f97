import type { FakeBuild } from '../builds';
import type { Authorizer, IamRequest, Session } from './authorizer';
import { deniedMessage } from './denied';
import { logStreamArn, parameterArn, secretArn } from './requests';

type Where = { region: string; account: string };

/**
 * What a build does as its service role (the project's, or StartBuild's serviceRoleOverride), each checked as AWS
 * checks CodeBuild's session of that role. A build whose role the fake's IAM does not hold is not checked.
 */
export class BuildRole {
  private readonly session: Session | undefined;

  constructor(
    private readonly iam: Authorizer,
    private readonly build: FakeBuild,
    private readonly where: Where,
  ) {
    const role = build.settings.serviceRole;
    const name = role.slice(role.lastIndexOf('/') + 1);
    const session = `arn:aws:sts::${where.account}:assumed-role/${name}/AWSCodeBuild-${build.streamName}`;
    this.session = iam.role(role) ? { roleArn: role, sessionArn: session } : undefined;
  }

  /** CodeBuild's own error when the role may not write the build's log stream (the build fails at once). */
  async logWrites(): Promise<string | undefined> {
    const resource = logStreamArn(this.where, this.build.groupName, this.build.streamName);
    const denied = await this.denied(['logs:CreateLogStream', 'logs:PutLogEvents'].map((action) => ({ action, resource })));
    if (!denied) return undefined;
    return `ACCESS_DENIED: Service role ${this.build.settings.serviceRole} does not allow AWS CodeBuild to create Amazon CloudWatch Logs log streams for build ${this.build.arn}. Error message: ${denied}`;
  }

  /** s3:GetObject on the source zip `<bucket>/<key>`. */
  async sourceRead(location: string): Promise<string | undefined> {
    return this.denied([{ action: 's3:GetObject', resource: `arn:aws:s3:::${location}` }]);
  }

  /** ssm:GetParameters on each parameter, as CodeBuild resolves PARAMETER_STORE variables. */
  async parameterReads(names: string[]): Promise<string | undefined> {
    return this.denied(names.map((name) => ({ action: 'ssm:GetParameters', resource: parameterArn(this.where, name) })));
  }

  /** secretsmanager:GetSecretValue on each secret, as CodeBuild resolves SECRETS_MANAGER variables. */
  async secretReads(ids: string[]): Promise<string | undefined> {
    return this.denied(ids.map((id) => ({ action: 'secretsmanager:GetSecretValue', resource: secretArn(this.where, id), context: { 'secretsmanager:SecretId': id } })));
  }

  /** IAM's message for the first request the role may not make. */
  private async denied(requests: IamRequest[]): Promise<string | undefined> {
    if (!this.session) return undefined;
    const decision = await this.iam.decideAll(this.session, requests);
    return decision.allowed ? undefined : deniedMessage(decision);
  }
}
