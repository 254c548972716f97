// Loaded with import() where needed (see ../clients.ts): a job that signs nothing never compiles it.
export { GetPublicKeyCommand, KMSClient, SignCommand } from '@aws-sdk/client-kms';
