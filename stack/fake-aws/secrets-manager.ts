import { findSecret } from './env';
import { AwsError } from './protocol';

/**
 * Secrets Manager's GetSecretValue (JSON 1.1, target `secretsmanager.GetSecretValue`) over the secrets CodeBuild
 * resolves SECRETS_MANAGER variables from: a job reads the registry credentials its build logs in with.
 */
export function handleSecretsManager(secrets: Record<string, string>, operation: string, body: Record<string, unknown>, where: { region: string; account: string }): Record<string, unknown> {
  if (operation !== 'GetSecretValue') {
    throw new AwsError('UnknownOperationException', `Operation ${operation} is not supported by the fake Secrets Manager (GetSecretValue).`);
  }
  const id = typeof body.SecretId === 'string' ? body.SecretId : '';
  if (!id) throw new AwsError('ValidationException', "1 validation error detected: Value null at 'secretId' failed to satisfy constraint: Member must not be null");
  const { name, value } = findSecret(secrets, id);
  if (value === undefined) throw new AwsError('ResourceNotFoundException', "Secrets Manager can't find the specified secret.");
  return {
    ARN: `arn:aws:secretsmanager:${where.region}:${where.account}:secret:${name}-AbCdEf`,
    Name: name,
    SecretString: value,
    VersionId: '00000000-0000-4000-8000-000000000001',
    VersionStages: ['AWSCURRENT'],
    CreatedDate: Math.floor(Date.now() / 1000),
  };
}
