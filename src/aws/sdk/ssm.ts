// Loaded with import() where needed (see ../clients.ts): a job that makes no Parameter Store call never compiles it.
export { DeleteParameterCommand, GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
