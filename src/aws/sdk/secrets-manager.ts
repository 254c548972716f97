// Loaded with import() where needed (see ../clients.ts): a job that reads no secret never compiles it.
export { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
