/**
 * The local stack tests and the demo run the program against: s3rver, a registry, a private dockerd and the
 * fake AWS (STS, CodeBuild, Logs, SSM, Secrets Manager, KMS, OIDC issuer), all on 127.0.0.1 with state under one directory;
 * on request the fake and s3rver over TLS with a private CA, and tinyproxy in front of them (docs/local-stack.md).
 */
import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { type BuildClaim, ensureBaseImage, sameBaseImage, seedBaseImage } from './base-image';
import { DOCKER_CLI, dockerConfigDir, dockerHostFor, execRootFor, startDockerd } from './docker';
import { startFake } from './fake';
import type { SigningKeyInfo } from './fake-aws/kms';
import { parameterArn, secretArn } from './fake-aws/iam/requests';
import { DEFAULT_SIGNING_KEY_ALIAS, type FakeAwsOptions } from './fake-aws/options';
import { stackAccount, type StackAccount } from './iam-template';
import { signToken, type TokenClaims } from './oidc';
import { DEFAULT_STACK_DIR } from './paths';
import { forgetPid, isAlive, isOurs, readJson, recordedPids, stopPid } from './process';
import { startProxy } from './proxy';
import { copyImage, registryStorage, startRegistry, type RegistryUser } from './registry';
import { s3Endpoint, startS3 } from './s3';
import { makeCertificates } from './tls';

export const REGION = 'us-east-1';
export const ACCOUNT = '000000000000';
/** What the template puts in `id_tokens` aud by default: `$CI_SERVER_URL` of the (pretend) GitLab. */
export const AUDIENCE = 'https://gitlab.example.com';
/** The project path the default token claims; the role trusts every project under `group/`. */
export const PROJECT_PATH = 'group/hello';
export const SUB_PATTERNS = ['project_path:group/*'];
/** How infra/cloudformation.yml is rendered for the stack (infra/cfn.ts): the stack's account and region. */
export const RENDER_CONTEXT = { accountId: ACCOUNT, region: REGION, partition: 'aws', stackName: 'codebuild-image' };
/** The program's default bucket name for the account and region, so the default is exercised too. */
export const BUCKET = `codebuild-image-${ACCOUNT}-${REGION}`;

export interface StackOptions {
  /** State directory; default `<repo>/.stack`. */
  dir?: string;
  /** Start dockerd and push the base image (needs root); default true. */
  docker?: boolean;
  /**
   * Start dockerd without the images and build cache an earlier stack in `dir` left, as a CodeBuild host starts.
   * Test stacks start so every run: an engine that kept every run's images spent 3–10 CPU-seconds more on its first
   * ten builds (87 and 460 MB of state), more with every run.
   */
  freshEngine?: boolean;
  /** Time the fake CodeBuild spends in each of SUBMITTED, QUEUED and PROVISIONING; the fake's default is 100. */
  phaseDelayMs?: number;
  /** Secrets Manager values (by name or ARN) the fake CodeBuild resolves for secret build args. */
  secrets?: Record<string, string>;
  /** Parameter Store values by name. */
  parameters?: Record<string, string>;
  /**
   * Also start a registry that requires this user, holding the base image too, with the user in the fake's Secrets
   * Manager as AUTH_REGISTRY_SECRET (`{"username","password"}`).
   */
  authRegistry?: RegistryUser;
  /**
   * With authRegistry only: a job token the authenticated registry also takes, as GitLab's registry takes a job's
   * CI_JOB_TOKEN (user gitlab-ci-token). Jobs get it through runOnStack's jobToken.
   */
  authRegistryJobToken?: string;
  /** KMS signing keys the fake makes, by alias name without `alias/`; the fake's default is `codebuild-image-signing`. */
  signingKeys?: { alias: string }[];
  /** Serve the fake AWS and s3rver over https, with a certificate from a private CA the stack makes (StackInfo.caFile). */
  tls?: boolean;
  /** Start tinyproxy in front of the fake AWS and s3rver (StackInfo.proxyUrl); the job's env then names it. */
  proxy?: boolean;
  /** With the proxy (implied): the fake AWS and s3rver reset every connection that did not come through it. */
  proxyOnly?: boolean;
  /**
   * GitLab groups, one tenant each: the template is rendered with `Tenants=<groups>` (StackInfo.tenants) instead of
   * one trusted team. Secrets, parameters and signing keys are then not granted by ARN (the template refuses
   * `SecretArns`, `ParameterArns`, `SigningKeyArns` and `JobTokens` with tenants): a tenant reads its own
   * `codebuild-image/<group>/…`.
   */
  tenants?: string[];
}

/** One tenant of a stack started with `tenants`: its component inputs, from the template's outputs. */
export interface TenantInfo {
  group: string;
  roleArn: string;
  projectName: string;
  s3Prefix: string;
  /** The CloudWatch Logs group of projectName's builds. */
  logGroupName: string;
}

/** The Secrets Manager secret (in the fake) with the authenticated registry's user. */
export const AUTH_REGISTRY_SECRET = 'stack/auth-registry';

/** Everything about a running stack; also written to `<dir>/stack.json`. */
export interface StackInfo {
  dir: string;
  /**
   * Environment for the program: region and endpoints only, and with the proxy or TLS also HTTPS_PROXY (HTTP_PROXY
   * without TLS), NO_PROXY (the registries, which builds and jobs reach directly) and AWS_CA_BUNDLE. No
   * credentials: the program gets them from the fake STS with an OIDC token (see `signToken`), as in a real job.
   */
  env: Record<string, string>;
  /** The CODEBUILD_IMAGE_* inputs that point the program at this stack (add image, context, tags…). */
  inputs: Record<string, string>;
  region: string;
  account: string;
  /** `127.0.0.1:<port>` */
  registry: string;
  /** `<registry>/busybox:stable`, present when dockerd runs. */
  baseImage: string | undefined;
  /** `127.0.0.1:<port>` of the registry that requires a user, when asked for (StackOptions.authRegistry). */
  authRegistry?: string;
  /** `<authRegistry>/busybox:stable`, present with authRegistry and dockerd. */
  authBaseImage?: string | undefined;
  bucket: string;
  s3Endpoint: string;
  /** The key s3rver knows, for tests that read the bucket directly (s3rver accepts any key for the program). */
  s3Credentials: { accessKeyId: string; secretAccessKey: string };
  projectName: string;
  /** The CloudWatch Logs group of projectName's builds. */
  logGroupName: string;
  roleArn: string;
  /**
   * With StackOptions.tenants: each tenant's inputs; projectName, roleArn, logGroupName and inputs are then the first
   * tenant's, and tokens claim `<first group>/hello` by default.
   */
  tenants?: TenantInfo[];
  audience: string;
  fakeUrl: string;
  /** `http://127.0.0.1:<port>` of tinyproxy, when the stack runs it (StackOptions.proxy, proxyOnly). */
  proxyUrl?: string;
  /** PEM of the stack's private CA, when the fake AWS and s3rver speak TLS (StackOptions.tls). */
  caFile?: string;
  /** True when the fake AWS and s3rver reset connections that did not come through the proxy. */
  proxyOnly: boolean;
  /** The fake KMS's signing keys: alias, key and alias ARNs, and the path of the public key's PEM. */
  signingKeys: SigningKeyInfo[];
  /** The fake's state directory (OIDC signing key), for `signToken` from stack/oidc.ts. */
  fakeWorkDir: string;
  /** `unix:///tmp/cbi-…/docker.sock`, present when dockerd runs. */
  dockerHost: string | undefined;
  /** Docker client config dir of the stack (keeps ~/.docker out). */
  dockerConfig: string;
  /** PIDs by daemon name, as in `<dir>/pids/*.pid`. */
  pids: Record<string, number>;
  /** PID of the process that owns the stack and will stop it; undefined for a detached stack (`cli.ts up`). */
  owner: number | undefined;
}

export interface Stack extends StackInfo {
  /** A GitLab-shaped OIDC token from the stack's issuer; `claims` override the defaults of a job in group/hello. */
  signToken(claims?: Partial<TokenClaims>): Promise<string>;
  /** Stops every process of the stack by PID and waits for them to end. */
  stop(): Promise<void>;
}

/** Stop order: nothing new reaches dockerd once the fake is gone; containerd goes with dockerd. */
const STOP_ORDER = ['proxy', 'fake-aws', 'dockerd', 'containerd', 'registry', 'registry-auth', 's3rver'];

export function stackFile(dir: string): string {
  return path.join(dir, 'stack.json');
}

/** `<pid>` of the process that owns the stack, or `detached`. */
function ownerFile(dir: string): string {
  return path.join(dir, 'owner');
}

export function readStack(dir: string): StackInfo | undefined {
  return readJson<StackInfo>(stackFile(dir));
}

/**
 * Starts the stack in `opts.dir`, cleaning up what a killed owner left there. Call `stop()` when done (also when
 * a test fails). `detached` (for `cli.ts up`) marks a stack meant to outlive the process that started it.
 */
export async function startStack(opts: StackOptions & { detached?: boolean } = {}): Promise<Stack> {
  const dir = path.resolve(opts.dir ?? DEFAULT_STACK_DIR);
  const withDocker = opts.docker ?? true;
  const proxyOnly = opts.proxyOnly ?? false;
  const withProxy = (opts.proxy ?? false) || proxyOnly;
  fs.mkdirSync(dir, { recursive: true });
  await clearLeftovers(dir);
  fs.writeFileSync(ownerFile(dir), `${process.pid}\n`);
  // Claims to build the base image (stack/base-image.ts), given up once the build is over or the start failed.
  const claims: BuildClaim[] = [];
  const giveUpClaims = () => {
    for (const claim of claims.splice(0)) claim.release();
  };

  try {
    // Everything starts at once; only the base image waits (for dockerd and the registry), and the proxy (for the
    // ports it may tunnel to).
    const certificates = opts.tls ? makeCertificates(dir) : undefined;
    const endpoint = await s3Endpoint(certificates ? 'https' : 'http');
    const dockerHost = withDocker ? dockerHostFor(dir) : undefined;
    const dockerConfig = dockerConfigDir(dir);
    const fakeWorkDir = path.join(dir, 'fake', 'work');
    const secrets = {
      ...opts.secrets,
      ...(opts.authRegistry ? { [AUTH_REGISTRY_SECRET]: JSON.stringify(opts.authRegistry) } : {}),
    };
    const parameters = opts.parameters ?? {};
    // Key ids chosen here, so that the template can grant the keys (SigningKeyArns) before the fake makes them.
    const signingKeys = (opts.signingKeys ?? [{ alias: DEFAULT_SIGNING_KEY_ALIAS }]).map((k) => ({ ...k, keyId: randomUUID() }));
    const account = stackAccount(
      opts.tenants ? tenantParameters(opts.tenants) : templateParameters(Object.keys(secrets), Object.keys(parameters), signingKeys.map((k) => k.keyId)),
      RENDER_CONTEXT,
    );
    const config: FakeAwsOptions = {
      workDir: fakeWorkDir,
      s3Endpoint: endpoint,
      region: REGION,
      account: ACCOUNT,
      iam: account.iam,
      projects: account.projects,
      secrets,
      parameters,
      buildEnv: buildEnv(dir, dockerHost, dockerConfig),
      ...(opts.phaseDelayMs === undefined ? {} : { phaseDelayMs: opts.phaseDelayMs }),
      signingKeys,
      ...(certificates ? { tls: certificates } : {}),
      proxyOnly,
    };
    const tenants = opts.tenants?.map((group) => tenantOutputs(account, group));
    const { roleArn, projectName, logGroupName } = tenants?.[0] ?? stackOutputs(account);
    const authUser = opts.authRegistry;
    // The registries start once they hold the base image, when some stack has built it.
    const seeded = async (name: string) => {
      const claim = withDocker ? await seedBaseImage(registryStorage(dir, name)) : undefined;
      if (claim) claims.push(claim);
    };
    const registryStarted = seeded('registry').then(() => startRegistry(dir));
    const jobTokenUser = opts.authRegistryJobToken ? [{ username: 'gitlab-ci-token', password: opts.authRegistryJobToken }] : [];
    const authRegistryStarted = authUser
      ? seeded('registry-auth').then(() => startRegistry(dir, { name: 'registry-auth', auth: [authUser, ...jobTokenUser] }))
      : Promise.resolve(undefined);
    const dockerStarted = withDocker ? startDockerd(dir, { fresh: opts.freshEngine ?? false }) : Promise.resolve(undefined);
    const s3Started = startS3(dir, BUCKET, endpoint, { tls: certificates, proxyOnly });
    const fakeStarted = startFake(dir, config);
    const port = (url: string) => Number(new URL(url).port);
    const proxyStarted = withProxy ? Promise.all([s3Started, fakeStarted]).then(([s, f]) => startProxy(dir, [port(s.endpoint), port(f.url)])) : Promise.resolve(undefined);
    const [s3, registry, dockerd, baseImage, fake, authRegistry, proxy] = await allSettled([
      s3Started,
      registryStarted,
      dockerStarted,
      Promise.all([dockerStarted, registryStarted])
        .then(([d, r]) => (d ? ensureBaseImage(dir, d.host, r.host, registryStorage(dir)) : undefined))
        .finally(giveUpClaims),
      fakeStarted,
      authRegistryStarted,
      proxyStarted,
    ]);
    let authBaseImage: string | undefined;
    if (authRegistry && authUser && baseImage) {
      authBaseImage = `${authRegistry.host}/${baseImage.slice(baseImage.indexOf('/') + 1)}`;
      if (!(await sameBaseImage(registry.host, authRegistry.host, authUser))) copyImage(dir, baseImage, authBaseImage, authUser);
    }

    const info: StackInfo = {
      dir,
      env: {
        AWS_REGION: REGION,
        // The fake in front of s3rver, which decides the program's S3 calls as IAM would.
        AWS_ENDPOINT_URL_S3: fake.url,
        AWS_ENDPOINT_URL_STS: fake.url,
        AWS_ENDPOINT_URL_CODEBUILD: fake.url,
        AWS_ENDPOINT_URL_CLOUDWATCH_LOGS: fake.url,
        AWS_ENDPOINT_URL_SSM: fake.url,
        AWS_ENDPOINT_URL_SECRETS_MANAGER: fake.url,
        AWS_ENDPOINT_URL_KMS: fake.url,
        // Without a token the default chain must fail fast instead of probing for an EC2 instance role.
        AWS_EC2_METADATA_DISABLED: 'true',
        ...(proxy ? { [certificates ? 'HTTPS_PROXY' : 'HTTP_PROXY']: proxy.url, NO_PROXY: [registry.host, ...(authRegistry ? [authRegistry.host] : [])].join(',') } : {}),
        ...(certificates ? { AWS_CA_BUNDLE: certificates.caFile } : {}),
      },
      inputs: {
        CODEBUILD_IMAGE_AWS_REGION: REGION,
        CODEBUILD_IMAGE_ROLE_ARN: roleArn,
        CODEBUILD_IMAGE_OIDC_AUDIENCE: AUDIENCE,
        CODEBUILD_IMAGE_PROJECT_NAME: projectName,
        CODEBUILD_IMAGE_S3_BUCKET: BUCKET,
        ...(tenants?.[0] ? { CODEBUILD_IMAGE_S3_PREFIX: tenants[0].s3Prefix } : {}),
      },
      region: REGION,
      account: ACCOUNT,
      registry: registry.host,
      baseImage,
      ...(authRegistry ? { authRegistry: authRegistry.host, authBaseImage } : {}),
      bucket: BUCKET,
      s3Endpoint: s3.endpoint,
      s3Credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
      projectName,
      logGroupName,
      roleArn,
      ...(tenants ? { tenants } : {}),
      audience: AUDIENCE,
      fakeUrl: fake.url,
      ...(proxy ? { proxyUrl: proxy.url } : {}),
      ...(certificates ? { caFile: certificates.caFile } : {}),
      proxyOnly,
      signingKeys: fake.signingKeys,
      fakeWorkDir,
      dockerHost: dockerd?.host,
      dockerConfig,
      pids: Object.fromEntries(recordedPids(dir)),
      owner: opts.detached ? undefined : process.pid,
    };
    fs.writeFileSync(stackFile(dir), `${JSON.stringify(info, null, 2)}\n`);
    if (opts.detached) fs.writeFileSync(ownerFile(dir), 'detached\n');
    return attach(info);
  } catch (e) {
    await stopStack(dir);
    throw e;
  } finally {
    giveUpClaims(); // the authenticated registry's, when it claimed only after the build; any, when the start failed
  }
}

/**
 * The parameters infra/cloudformation.yml is rendered with for the stack: GitLab is the stack's OIDC issuer under the
 * name of AUDIENCE, every project of `group/` is trusted, builds may read every secret and parameter the stack holds
 * and jobs pass job tokens, and the CI role signs with the stack's KMS keys.
 */
export function templateParameters(secretIds: string[], parameterNames: string[], keyIds: string[]): Record<string, string | string[]> {
  const list = (items: string[]) => (items.length === 0 ? '' : items);
  return {
    GitLabUrl: AUDIENCE,
    AllowedSubjects: SUB_PATTERNS,
    // The stack has no ECR: the repositories' policies are checked by the unit tests of the rendered template only.
    EcrRepositories: PROJECT_PATH,
    CreateEcrRepositories: 'false',
    JobTokens: 'true',
    // `??????`: the random suffix AWS adds to a secret's name in its ARN.
    SecretArns: list(secretIds.map((id) => secretArn(WHERE, id).replace(/-[A-Za-z0-9]{6}$/, '-??????'))),
    ParameterArns: list(parameterNames.map((name) => parameterArn(WHERE, name))),
    SigningKeyArns: list(keyIds.map(keyArn)),
  };
}

/**
 * The parameters for `groups` as tenants: `AllowedSubjects` lets in every project of every group (each tenant's role
 * then trusts only its own group's), and the lists every tenant would share stay empty, as the template's Rules
 * require. The stack has no ECR (see templateParameters).
 */
export function tenantParameters(groups: string[]): Record<string, string | string[]> {
  return {
    GitLabUrl: AUDIENCE,
    AllowedSubjects: groups.map((g) => `project_path:${g}/*`),
    Tenants: groups,
    EcrRepositories: groups.map((g) => `${g}/hello`),
    CreateEcrRepositories: 'false',
    JobTokens: 'false',
  };
}

const WHERE = { region: REGION, account: ACCOUNT };
const keyArn = (keyId: string) => `arn:aws:kms:${REGION}:${ACCOUNT}:key/${keyId}`;

/** The component inputs the template's outputs give: role_arn and (x86_64) project_name, and its log group. */
function stackOutputs(account: StackAccount, suffix = ''): { roleArn: string; projectName: string; logGroupName: string } {
  const roleArn = account.outputs[`RoleArn${suffix}`];
  const projectName = account.outputs[`ProjectName${suffix}`];
  if (typeof roleArn !== 'string' || typeof projectName !== 'string') {
    throw new Error(`infra/cloudformation.yml has no RoleArn${suffix} and ProjectName${suffix} outputs for the stack`);
  }
  const logGroupName = account.projects.find((p) => p.name === projectName)?.logGroupName ?? `/aws/codebuild/${projectName}`;
  return { roleArn, projectName, logGroupName };
}

/** A tenant's inputs, from the outputs `Fn::ForEach` names with the group's letters and digits (`team-a` → `teama`). */
function tenantOutputs(account: StackAccount, group: string): TenantInfo {
  const suffix = group.replace(/[^A-Za-z0-9]/g, '');
  const s3Prefix = account.outputs[`S3Prefix${suffix}`];
  if (typeof s3Prefix !== 'string') throw new Error(`infra/cloudformation.yml has no S3Prefix${suffix} output for tenant ${group}`);
  return { group, ...stackOutputs(account, suffix), s3Prefix };
}

/**
 * Like Promise.all, but rejects only once everything has settled, so no daemon is still being spawned (and
 * missed by the cleanup) when the first failure is handled.
 */
async function allSettled<T extends readonly unknown[]>(promises: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/** Methods for a stack described by `info` (e.g. read back from stack.json). */
export function attach(info: StackInfo): Stack {
  return {
    ...info,
    signToken: (claims = {}) => signToken(info.fakeWorkDir, { ...defaultClaims(info), ...claims }),
    stop: () => stopStack(info.dir),
  };
}

/**
 * Claims of a GitLab job in project group/hello (`<first tenant's group>/hello` with tenants) on branch main (the rest
 * are stack/oidc.ts defaults).
 */
export function defaultClaims(info: Pick<StackInfo, 'audience' | 'tenants'>): TokenClaims {
  return { aud: info.audience, project_path: info.tenants?.[0] ? `${info.tenants[0].group}/hello` : PROJECT_PATH };
}

function buildEnv(dir: string, dockerHost: string | undefined, dockerConfig: string): Record<string, string> {
  // `docker` in buildspecs must be the client matching the daemon, whatever else is on PATH.
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin, { recursive: true });
  fs.rmSync(path.join(bin, 'docker'), { force: true });
  fs.symlinkSync(DOCKER_CLI, path.join(bin, 'docker'));
  return {
    PATH: `${bin}:${process.env.PATH ?? '/usr/bin:/bin'}`,
    DOCKER_CONFIG: dockerConfig,
    // The stack's dockerd has no bridge network (no private-range addresses here): builds use the host's.
    CBI_BUILD_NETWORK: 'host',
    ...(dockerHost ? { DOCKER_HOST: dockerHost } : {}),
  };
}

/**
 * Stops whatever the pid files of `dir` record (only processes whose command line names the stack's
 * directories, so a recycled PID is never signalled) and removes stack.json. Safe to call repeatedly.
 */
export async function stopStack(dir: string): Promise<void> {
  const markers = daemonMarkers(dir);
  const pids = recordedPids(dir);
  const names = [...pids.keys()].sort((a, b) => rank(a) - rank(b));
  for (const name of names) {
    const pid = pids.get(name);
    if (pid !== undefined && isOurs(pid, markers)) await stopPid(pid);
    forgetPid(dir, name);
  }
  fs.rmSync(execRootFor(dir), { recursive: true, force: true });
  fs.rmSync(stackFile(dir), { force: true });
  fs.rmSync(ownerFile(dir), { force: true });
}

/**
 * Paths every daemon of the stack in `dir` has in its command line: its own state subdirectory (not just `dir`,
 * which may contain other stacks' directories) or dockerd's exec root.
 */
function daemonMarkers(dir: string): string[] {
  return [...['s3', 'registry', 'registry-auth', 'docker', 'fake', 'proxy'].map((sub) => `${path.join(dir, sub)}/`), `${execRootFor(dir)}/`];
}

function rank(name: string): number {
  const i = STOP_ORDER.indexOf(name);
  return i === -1 ? STOP_ORDER.length : i;
}

/** Processes of `dir` still alive according to its pid files. */
export function livePids(dir: string): Map<string, number> {
  const markers = daemonMarkers(dir);
  return new Map([...recordedPids(dir)].filter(([, pid]) => isOurs(pid, markers)));
}

/**
 * A stack whose owner died (a killed test run) is cleaned up; a running one with a live or detached owner is
 * left alone, with an error that says how to stop it.
 */
async function clearLeftovers(dir: string): Promise<void> {
  const live = livePids(dir);
  if (live.size === 0) {
    await stopStack(dir); // stale pid files, socket dir
    return;
  }
  let owner: string | undefined;
  try {
    owner = fs.readFileSync(ownerFile(dir), 'utf8').trim();
  } catch {
    owner = undefined;
  }
  const ownerPid = Number(owner);
  if (owner === 'detached' || (Number.isInteger(ownerPid) && ownerPid > 1 && isAlive(ownerPid))) {
    const who = owner === 'detached' ? 'started by `stack/cli.ts up`' : `owned by PID ${owner}`;
    throw new Error(
      `a local stack is already running in ${dir} (${who}; PIDs ${[...live.values()].join(', ')}): ` +
        `stop it with \`npx tsx stack/cli.ts down --dir ${dir}\` or use another directory`,
    );
  }
  await stopStack(dir);
}

/** Shell `export` lines: the program's env and inputs, plus STACK_* facts for scripts. */
export function shellExports(
  info: Pick<StackInfo, 'dir' | 'env' | 'inputs' | 'registry' | 'baseImage' | 'authRegistry' | 'authBaseImage' | 'dockerHost' | 'dockerConfig' | 'fakeUrl'>,
): string {
  const vars: Record<string, string | undefined> = {
    ...info.env,
    ...info.inputs,
    STACK_DIR: info.dir,
    STACK_REGISTRY: info.registry,
    STACK_BASE_IMAGE: info.baseImage,
    STACK_AUTH_REGISTRY: info.authRegistry,
    STACK_AUTH_BASE_IMAGE: info.authBaseImage,
    STACK_AUTH_REGISTRY_SECRET: info.authRegistry ? AUTH_REGISTRY_SECRET : undefined,
    STACK_DOCKER_HOST: info.dockerHost,
    STACK_DOCKER_CONFIG: info.dockerConfig,
    STACK_FAKE_URL: info.fakeUrl,
  };
  return Object.entries(vars)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `export ${k}='${v.replaceAll("'", `'\\''`)}'`)
    .join('\n');
}
