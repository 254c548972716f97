import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { mkdir, readFile } from 'node:fs/promises';
import { CodeBuildService } from './codebuild';
import { handleControl } from './control';
import { ModelChecks } from './models/checks';
import { assertModels } from './models/model';
import { queryService, serviceForTarget, type ServiceInfo } from './models/services';
import { CredentialStore } from './credentials';
import { Faults } from './faults';
import { Authorizer } from './iam/authorizer';
import { accessDenied as iamDenied } from './iam/denied';
import { iamRequests } from './iam/requests';
import { Kms, type SigningKeyInfo } from './kms';
import { startLiveTail } from './live-tail';
import { getLogEvents, LogsStore } from './logs';
import { createIssuer, type OidcIssuer } from './oidc-issuer';
import { refuseDirectConnections, resolveOptions, type FakeAwsOptions, type TlsFiles } from './options';
import { AwsError, readBody, sendError, sendJson, sendXml, type Protocol } from './protocol';
import { handleS3, isS3Request } from './s3-front';
import { handleSecretsManager } from './secrets-manager';
import { handleSsm } from './ssm';
import { handleSts } from './sts';

/** The error codes with which AWS refuses a call over a quota: /_fake/refusals counts them. */
const QUOTA_REFUSALS = new Set(['Throttling', 'ThrottlingException', 'LimitExceededException']);

export type { FakeAwsOptions } from './options';
export type { SigningKeyInfo } from './kms';

export interface FakeAws {
  url: string;
  /** Issuer URL of the fake GitLab OIDC provider (also in <workDir>/oidc-issuer). */
  issuer: string;
  /** The KMS signing keys made at start (options.signingKeys). */
  signingKeys: SigningKeyInfo[];
  stop(): Promise<void>;
}

/**
 * Starts fake STS + CodeBuild + CloudWatch Logs + Parameter Store + Secrets Manager + KMS, S3 in front of s3rver, and
 * GitLab's OIDC issuer and job status, on one 127.0.0.1 port.
 */
export async function startFakeAws(input: FakeAwsOptions): Promise<FakeAws> {
  const options = resolveOptions(input);
  await mkdir(options.workDir, { recursive: true });
  const logs = new LogsStore();
  const faults = new Faults();
  const credentials = new CredentialStore(options.region);
  const iam = new Authorizer(options.iam, options);
  // The stack's template creates the groups its projects name; CodeBuild creates `/aws/codebuild/<project>` itself.
  for (const p of options.projects) if (p.logGroupName) logs.createGroup(p.logGroupName);
  const codebuild = new CodeBuildService(options, { options, logs, iam, provisioningMs: () => faults.takeProvisioning() });
  assertModels();
  const checks = new ModelChecks();
  const kms = await Kms.create(options.signingKeys, options);
  const names = { region: options.region, account: options.account, keyArn: (id: unknown) => kms.keyFor(id).keyArn };
  // The issuer URL holds the port, so requests are taken only once the server listens and the key exists.
  const server = options.tls ? createHttpsServer(await keyAndCert(options.tls)) : createServer();
  if (options.proxyOnly) refuseDirectConnections(server, 'fake-aws');
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, '127.0.0.1', () => resolve());
  });
  const url = `${options.tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const issuer = await createIssuer(url, options.workDir);
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end(`fake-aws internal error: ${(e as Error).message}`);
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const own = path.startsWith('/_fake/') || path.startsWith('/oidc/') || path === '/gitlab/api/v4/job';
    // Before the body is read: S3's is streamed to s3rver as it comes.
    if (!own && isS3Request(req)) return handleS3(req, res, { options, credentials, iam });
    const body = await readBody(req);
    if (path.startsWith('/_fake/')) return handleControl(req, res, path, body, { faults, codebuild, checks });
    if (path.startsWith('/oidc/') && req.method === 'GET') return serveIssuer(res, path, issuer);
    // GitLab's GET /job, with which a job watches its own status: always running (cancellation is a signal here).
    if (path === '/gitlab/api/v4/job' && req.method === 'GET') {
      const ok = typeof req.headers['job-token'] === 'string' && req.headers['job-token'] !== '';
      res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      res.end(JSON.stringify(ok ? { status: 'running' } : { message: '401 Unauthorized' }));
      return;
    }

    const target = req.headers['x-amz-target'];
    let service: ServiceInfo | undefined;
    let operation: string;
    let params: URLSearchParams | undefined;
    if (typeof target === 'string') {
      service = serviceForTarget(target);
      operation = target.slice(target.indexOf('.') + 1);
    } else if (req.method === 'POST' && String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded')) {
      service = queryService();
      params = new URLSearchParams(body);
      operation = params.get('Action') ?? '';
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('fake-aws: expected an AWS JSON 1.1 (X-Amz-Target) or Query (Action=...) request, /oidc/*, /gitlab/api/v4/job or /_fake/*');
      return;
    }
    const protocol: Protocol = params ? 'query' : 'json';

    const verdict = faults.onCall(operation);
    if (verdict.delayMs > 0) await new Promise((r) => setTimeout(r, verdict.delayMs));
    if (verdict.action === 'reset') {
      req.socket.destroy();
      return;
    }
    try {
      if (verdict.action === 'throttle') throw new AwsError(protocol === 'query' ? 'Throttling' : 'ThrottlingException', 'Rate exceeded');
      if (verdict.action === 'denied') throw accessDenied(protocol, operation, body);
      if (verdict.action === 500) throw new AwsError('InternalFailure', 'We encountered an internal error. Please try again.', 500);
      if (verdict.action === 503) throw new AwsError(protocol === 'query' ? 'ServiceUnavailable' : 'ServiceUnavailableException', 'Service is unavailable. Please try again.', 503);
      if (!service) throw new AwsError('UnknownOperationException', `Unknown target ${String(target)}`);
      if (params) {
        const invalid = checks.request(service, operation, params);
        if (invalid) throw invalid;
        const xml = await handleSts(operation, params, req.headers, { issuer, iam, account: options.account, credentials });
        await checks.xmlResponse(service, operation, xml);
        sendXml(res, xml);
        return;
      }
      const { session } = credentials.authenticate(req.headers);
      let json: Record<string, unknown>;
      try {
        json = body ? (JSON.parse(body) as Record<string, unknown>) : {};
      } catch {
        throw new AwsError('SerializationException', 'Request body is not valid JSON');
      }
      const invalid = checks.request(service, operation, json);
      if (invalid) throw invalid;
      if (session) {
        const decision = await iam.decideAll(session, iamRequests(service.name, operation, json, names));
        if (!decision.allowed) {
          const denied = iamDenied(decision, 'json');
          // One line in the daemon's log, so that a test that fails on a permission shows which one.
          console.error(`fake-aws: ${service.name}:${operation} denied: ${denied.message}`);
          throw denied;
        }
      }
      if (service.name === 'logs' && operation === 'StartLiveTail') {
        if (options.liveTail?.disabled) throw new AwsError('AccessDeniedException', 'User is not authorized to perform: logs:StartLiveTail');
        return startLiveTail(logs, json, res, options.liveTail, checks.stream(service, operation));
      }
      const answer = await answerJson(service.name, operation, json);
      checks.response(service, operation, answer);
      sendJson(res, answer);
    } catch (e) {
      if (!(e instanceof AwsError)) throw e;
      if (service) checks.error(service, operation, e.code);
      if (QUOTA_REFUSALS.has(e.code)) faults.countRefusal(operation, e.code);
      sendError(res, protocol, e);
    }
  }

  /** The answer of a JSON 1.1 service's operation. */
  async function answerJson(service: string, operation: string, json: Record<string, unknown>): Promise<unknown> {
    switch (service) {
      case 'codebuild':
        return codebuild.handle(operation, json);
      case 'ssm':
        return handleSsm(options.parameters, operation, json);
      case 'secretsmanager':
        return handleSecretsManager(options.secrets, operation, json, options);
      case 'kms':
        return kms.handle(operation, json);
      case 'logs':
        if (operation !== 'GetLogEvents') throw new AwsError('UnknownOperationException', `Operation ${operation} is not supported by the fake CloudWatch Logs (GetLogEvents, StartLiveTail).`);
        return getLogEvents(logs, json);
      default:
        throw new AwsError('UnknownOperationException', `The fake does not serve ${service}.`);
    }
  }

  let stopping: Promise<void> | undefined;
  return {
    url,
    issuer: issuer.issuer,
    signingKeys: kms.signingKeys,
    stop: () =>
      (stopping ??= (async () => {
        await codebuild.stopAll();
        server.closeAllConnections();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })()),
  };
}

async function keyAndCert(tls: TlsFiles): Promise<{ key: Buffer; cert: Buffer }> {
  return { key: await readFile(tls.keyFile), cert: await readFile(tls.certFile) };
}

function serveIssuer(res: ServerResponse, path: string, issuer: OidcIssuer): void {
  const doc = path === '/oidc/.well-known/openid-configuration' ? issuer.discovery() : path === '/oidc/jwks' ? issuer.jwks : undefined;
  res.writeHead(doc ? 200 : 404, { 'content-type': 'application/json' });
  res.end(JSON.stringify(doc ?? { error: 'not found' }));
}

/** A denied call as AWS words it: naming the resource a JSON request names (SecretId, Name), as AWS does. */
function accessDenied(protocol: Protocol, operation: string, body: string): AwsError {
  let resource: unknown;
  try {
    const json = JSON.parse(body) as { SecretId?: unknown; Name?: unknown };
    resource = json.SecretId ?? json.Name;
  } catch {
    // a Query request (STS): no resource
  }
  const on = typeof resource === 'string' ? ` on resource: ${resource}` : '';
  return new AwsError(protocol === 'query' ? 'AccessDenied' : 'AccessDeniedException', `User is not authorized to perform: ${operation}${on}`);
}
