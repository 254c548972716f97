import type { Server, Socket } from 'node:net';
import { resolve } from 'node:path';
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
  roles?: RoleConfig[];
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
   * PEM is written to `<workDir>/kms/<alias>.pem`. Default: one key, `codebuild-image-signing`.
   */
  signingKeys?: { alias: string }[];
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

export interface RoleConfig {
  arn: string;
  /** Token audiences the role trusts (IAM condition <issuer>:aud). All roles' audiences form the provider's client ID list. */
  audience: string | string[];
  /** StringLike patterns (`*`, `?`) for the token's sub (IAM condition <issuer>:sub). */
  subPatterns: string[];
  /** MaxSessionDuration of the role in seconds (default 3600, as AWS). */
  maxSessionDuration?: number;
}

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
}

export interface EnvVar {
  name: string;
  value: string;
  type?: 'PLAINTEXT' | 'PARAMETER_STORE' | 'SECRETS_MANAGER';
}

export type ResolvedOptions = Required<Omit<FakeAwsOptions, 's3Endpoint' | 'port' | 'liveTail' | 'tls'>> &
  Pick<FakeAwsOptions, 's3Endpoint' | 'liveTail' | 'tls'> & { port: number };

export const DEFAULT_SIGNING_KEY_ALIAS = 'codebuild-image-signing';

export function resolveOptions(o: FakeAwsOptions): ResolvedOptions {
  if (!o.workDir) throw new Error('fake-aws: options.workDir is required (a writable state directory)');
  for (const r of o.roles ?? []) {
    if (!/^arn:aws:iam::\d{12}:role\/[\w+=,.@/-]+$/.test(r.arn)) {
      throw new Error(`fake-aws: role arn ${JSON.stringify(r.arn)} is not arn:aws:iam::<12 digits>:role/<name>`);
    }
  }
  const signingKeys = o.signingKeys ?? [{ alias: DEFAULT_SIGNING_KEY_ALIAS }];
  for (const [i, { alias }] of signingKeys.entries()) {
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
    account: o.account ?? '000000000000',
    port: o.port ?? 0,
    roles: o.roles ?? [],
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
