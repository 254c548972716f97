// Loaded with import() where needed (see ../clients.ts): a job that makes no ECR call never compiles it.
export { ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
