import type { Server, Socket } from 'node:net';
import { resolve } from 'node:path';
import { simpleIam, type IamConfig, type SimpleRole } from './iam/config';
import type { LiveTailOptions } from './live-tail';

/** Configuration of the fake (also the JSON accepted by main.ts --config). */
export interface FakeAwsOptions {
  /** State directory: OIDC key, issuer URL, per-build source and shell state. */
  workDir: string;
  /** s3rver endpoint (http://127.0.0.1:PORT) the fake CodeBuild downloads source zips from. */
  s3Endpoint?: string;
  region?: string;
  account?: string;
  port?: number;
  /** Roles that trust the fake's issuer on `aud` and `sub` and may do everything (not with `iam`). */
  roles?: RoleConfig[];
  /**
   * The account's IAM, evaluated for every call made with credentials of the fake's STS and for every build's own
   * reads and log writes (stack/iam-template.ts makes it from infra/cloudformation.yml). Without it, `roles`.
   */
  iam?: IamConfig;
  projects?: ProjectConfig[];
  /** Secrets Manager secrets by name or ARN: SecretString values (JSON text for json-key lookups). */
  secrets?: Record<string, string>;
  /** SSM Parameter Store values by parameter name. */
  parameters?: Record<string, string>;
  /** Extra environment of every build process (e.g. DOCKER_HOST), below all CodeBuild sources. */
  buildEnv?: Record<string, string>;
  /** Time spent in each of SUBMITTED, QUEUED and PROVISIONING (default 100 ms). */
  phaseDelayMs?: number;
  /** Length of one "minute" for build timeouts, so tests can hit them (default 60000). */
  minuteMs?: number;
  /** Idempotency token lifetime (default 5 minutes, as AWS). */
  idempotencyWindowMs?: number;
  /**
   * KMS signing keys (ECC_NIST_P256, SIGN_VERIFY) made at start, by alias name without `alias/`; each one's public
   * PEM is written to `<workDir>/kms/<alias>.pem`. `keyId` (a UUID) fixes the key's id, so that policies can name its
   * ARN before the fake starts. Default: one key, `codebuild-image-signing`.
   */
  signingKeys?: { alias: string; keyId?: string }[];
  /** StartLiveTail pacing, for tests; `{ disabled: true }` answers AccessDeniedException as for a role without logs:StartLiveTail. */
  liveTail?: LiveTailOptions & { disabled?: boolean };
  /** Serve https with this key and certificate; `caFile` is what the fake's own S3 client trusts (s3rver over TLS). */
  tls?: TlsFiles;
  /**
   * Proxy-only mode: reset every connection whose peer is not PROXY_SOURCE_ADDRESS, the address the stack's proxy
   * connects from, as a corporate firewall refuses a direct connection. The fake's own S3 downloads and the test
   * control (fakeControl) connect from that address too: they stand for what runs inside AWS, not for the job.
   */
  proxyOnly?: boolean;
}

/** Where the stack's proxy (tinyproxy, `Bind`) opens its outgoing connections from. */
export const PROXY_SOURCE_ADDRESS = '127.0.0.2';

/**
 * Proxy-only mode for the fake and s3rver: a connection from anywhere but the proxy is reset before a byte is read,
 * so a client that bypasses the proxy sees the endpoint as unreachable. One line on stderr (the daemon's log) says why.
 */
export function refuseDirectConnections(server: Server, name: string): void {
  server.prependListener('connection', (socket: Socket) => {
    if (socket.remoteAddress === PROXY_SOURCE_ADDRESS) return;
    console.error(`${name}: proxy-only mode: reset a direct connection from ${socket.remoteAddress ?? 'an unknown address'} (only the stack's proxy, from ${PROXY_SOURCE_ADDRESS}, is served)`);
    socket.resetAndDestroy();
  });
}

export interface TlsFiles {
  keyFile: string;
  certFile: string;
  caFile: string;
}

/**
 * `audience`: token audiences the role trusts (IAM condition <issuer>:aud), all roles' audiences forming the
 * provider's client ID list; `subPatterns`: StringLike patterns (`*`, `?`) for the token's sub; `maxSessionDuration`
 * in seconds (default 3600, as AWS).
 */
export type RoleConfig = SimpleRole;

export interface ProjectConfig {
  name: string;
  source?: { type: 'S3' | 'NO_SOURCE'; location?: string; buildspec?: string };
  environment?: {
    type?: string;
    image?: string;
    computeType?: string;
    privilegedMode?: boolean;
    environmentVariables?: EnvVar[];
  };
  timeoutInMinutes?: number;
  queuedTimeoutInMinutes?: number;
  serviceRole?: string;
  /** The CloudWatch Logs group of its builds (LogsConfig); default `/aws/codebuild/<name>`, as CodeBuild's. */
  logGroupName?: string;
}

export interface EnvVar {
  name: string;
  value: string;
  type?: 'PLAINTEXT' | 'PARAMETER_STORE' | 'SECRETS_MANAGER';
}

export type ResolvedOptions = Required<Omit<FakeAwsOptions, 's3Endpoint' | 'port' | 'liveTail' | 'tls' | 'roles'>> &
  Pick<FakeAwsOptions, 's3Endpoint' | 'liveTail' | 'tls'> & { port: number };

const DEFAULT_ACCOUNT = '000000000000';

export const DEFAULT_SIGNING_KEY_ALIAS = 'codebuild-image-signing';

export function resolveOptions(o: FakeAwsOptions): ResolvedOptions {
  if (!o.workDir) throw new Error('fake-aws: options.workDir is required (a writable state directory)');
  if (o.iam && o.roles) throw new Error('fake-aws: give either options.iam (the account\'s IAM) or options.roles, not both');
  for (const r of o.iam?.roles ?? o.roles ?? []) {
    if (!/^arn:aws:iam::\d{12}:role\/[\w+=,.@/-]+$/.test(r.arn)) {
      throw new Error(`fake-aws: role arn ${JSON.stringify(r.arn)} is not arn:aws:iam::<12 digits>:role/<name>`);
    }
  }
  const signingKeys = o.signingKeys ?? [{ alias: DEFAULT_SIGNING_KEY_ALIAS }];
  for (const [i, { alias, keyId }] of signingKeys.entries()) {
    if (keyId !== undefined && !/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(keyId)) {
      throw new Error(`fake-aws: signing key id ${JSON.stringify(keyId)} is not a lower-case UUID, as KMS key ids are`);
    }
    // Alias names as KMS takes them, less `:` and empty segments, so that each names a file under <workDir>/kms.
    if (!/^[\w-]+(\/[\w-]+)*$/.test(alias) || /^(alias|aws)\//.test(alias) || alias.length > 250) {
      throw new Error(`fake-aws: signing key alias ${JSON.stringify(alias)} is not a KMS alias name without "alias/" (letters, digits, _, -, /; not aws/…)`);
    }
    if (signingKeys.findIndex((k) => k.alias === alias) !== i) throw new Error(`fake-aws: signing key alias ${JSON.stringify(alias)} is given twice`);
  }
  return {
    workDir: resolve(o.workDir),
    ...(o.s3Endpoint === undefined ? {} : { s3Endpoint: o.s3Endpoint }),
    ...(o.liveTail === undefined ? {} : { liveTail: o.liveTail }),
    ...(o.tls === undefined ? {} : { tls: o.tls }),
    proxyOnly: o.proxyOnly ?? false,
    region: o.region ?? 'us-east-1',
    account: o.account ?? DEFAULT_ACCOUNT,
    port: o.port ?? 0,
    iam: o.iam ?? simpleIam(o.roles ?? [], o.account ?? DEFAULT_ACCOUNT),
    projects: o.projects ?? [],
    secrets: o.secrets ?? {},
    parameters: o.parameters ?? {},
    buildEnv: o.buildEnv ?? {},
    phaseDelayMs: o.phaseDelayMs ?? 100,
    minuteMs: o.minuteMs ?? 60_000,
    idempotencyWindowMs: o.idempotencyWindowMs ?? 5 * 60_000,
    signingKeys,
  };
}
