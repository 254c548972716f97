import { createRequire } from 'node:module';

interface S3rverAccount {
  id: number;
}
interface S3rverAccountModule {
  registry: Map<string, S3rverAccount>;
  DUMMY_ACCOUNT: S3rverAccount;
}

/**
 * s3rver only knows the access key `S3RVER`; the program signs with whatever temporary credentials the fake STS
 * issued, so every access key is mapped to s3rver's one account (it never checks SigV4 signatures anyway). For the
 * s3rver of this process.
 */
export function acceptAnyAccessKey(): void {
  const accounts = createRequire(import.meta.url)('s3rver/lib/models/account') as S3rverAccountModule;
  const known = accounts.registry.get.bind(accounts.registry);
  accounts.registry.get = (accessKeyId: string) => known(accessKeyId) ?? accounts.DUMMY_ACCOUNT;
}
