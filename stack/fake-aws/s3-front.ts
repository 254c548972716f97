import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { CredentialStore } from './credentials';
import type { Authorizer, IamRequest } from './iam/authorizer';
import { deniedMessage } from './iam/denied';
import { PROXY_SOURCE_ADDRESS, type ResolvedOptions } from './options';
import { AwsError, xmlEscape } from './protocol';

/**
 * S3 in front of s3rver: a request signed for S3 with credentials of the fake's STS is decided as IAM decides it
 * (the role's policies and the bucket policy), then passed to s3rver unchanged, body streamed; a refusal is S3's
 * 403 AccessDenied. Requests signed with other keys, or unsigned, pass unchecked.
 */
export function isS3Request(req: IncomingMessage): boolean {
  const scope = /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(String(req.headers['authorization'] ?? ''))?.[1]
    ?? /\/\d{8}\/[^/]+\/([^/]+)\/aws4_request/.exec(decodeURIComponent(new URL(req.url ?? '/', 'http://x').searchParams.get('X-Amz-Credential') ?? ''))?.[1];
  if (scope !== undefined) return scope === 's3';
  // Unsigned: anything that is no AWS JSON or Query call (curl listing the buckets).
  return req.headers['x-amz-target'] === undefined && !String(req.headers['content-type']).startsWith('application/x-www-form-urlencoded');
}

/** The IAM action of a path-style S3 request, on its object or bucket ARN. */
export function s3Request(method: string, url: URL): IamRequest {
  const [, bucket = '', ...rest] = url.pathname.split('/');
  const key = rest.map(decodeURIComponent).join('/');
  const q = url.searchParams;
  if (bucket === '') return { action: 's3:ListAllMyBuckets', resource: '*' };
  const object = `arn:aws:s3:::${decodeURIComponent(bucket)}/${key}`;
  if (key === '') {
    const action = method === 'PUT' ? 's3:CreateBucket' : method === 'DELETE' ? 's3:DeleteBucket' : 's3:ListBucket';
    return { action, resource: `arn:aws:s3:::${decodeURIComponent(bucket)}` };
  }
  if (method === 'DELETE') return { action: q.has('uploadId') ? 's3:AbortMultipartUpload' : 's3:DeleteObject', resource: object };
  if (method === 'GET' && q.has('uploadId')) return { action: 's3:ListMultipartUploadParts', resource: object };
  // PutObject, UploadPart, CreateMultipartUpload and CompleteMultipartUpload are all s3:PutObject.
  if (method === 'PUT' || method === 'POST') return { action: 's3:PutObject', resource: object };
  return { action: 's3:GetObject', resource: object };
}

export async function handleS3(req: IncomingMessage, res: ServerResponse, deps: { options: ResolvedOptions; credentials: CredentialStore; iam: Authorizer }): Promise<void> {
  const { options } = deps;
  if (!options.s3Endpoint) return sendS3Error(res, new AwsError('NotImplemented', 'The fake has no s3Endpoint to serve S3 from.', 501));
  let session;
  try {
    session = req.headers['authorization'] ? deps.credentials.authenticate(req.headers).session : undefined;
  } catch (e) {
    if (!(e instanceof AwsError)) throw e;
    return sendS3Error(res, new AwsError(e.code === 'UnrecognizedClientException' ? 'InvalidAccessKeyId' : e.code, e.message, 403));
  }
  const url = new URL(req.url ?? '/', 'http://x');
  const wanted = s3Request(req.method ?? 'GET', url);
  if (session) {
    const decision = await deps.iam.decide(session, wanted);
    if (!decision.allowed) {
      console.error(`fake-aws: ${wanted.action} denied: ${deniedMessage(decision)}`);
      req.resume();
      return sendS3Error(res, new AwsError('AccessDenied', deniedMessage(decision), 403), req.method === 'HEAD');
    }
  }
  const upstream = await forward(req, options);
  // Without s3:ListBucket, S3 answers a missing key 403, not 404: it does not say whether the key exists.
  if (session && upstream.statusCode === 404 && wanted.action === 's3:GetObject') {
    const bucket = wanted.resource.slice(0, wanted.resource.indexOf('/'));
    const list = await deps.iam.decide(session, { action: 's3:ListBucket', resource: bucket });
    if (!list.allowed) {
      upstream.resume();
      return sendS3Error(res, new AwsError('AccessDenied', 'Access Denied', 403), req.method === 'HEAD');
    }
  }
  res.writeHead(upstream.statusCode ?? 502, upstream.headers);
  upstream.pipe(res);
}

/** The same request to s3rver, from the proxy's address (s3rver's proxy-only mode serves it), trusting the stack's CA. */
function forward(req: IncomingMessage, o: ResolvedOptions): Promise<IncomingMessage> {
  const target = new URL(req.url ?? '/', o.s3Endpoint);
  const tls = target.protocol === 'https:';
  // The fake already answered `Expect: 100-continue` (Node does); the body follows at once.
  const { expect: _continue, ...headers } = req.headers;
  const options = {
    method: req.method ?? 'GET',
    headers,
    ...(o.proxyOnly ? { localAddress: PROXY_SOURCE_ADDRESS } : {}),
    ...(tls && o.tls ? { ca: readFileSync(o.tls.caFile) } : {}),
  };
  return new Promise((resolve, reject) => {
    const out = (tls ? httpsRequest : httpRequest)(target, options, resolve);
    out.on('error', reject);
    req.pipe(out);
  });
}

function sendS3Error(res: ServerResponse, e: AwsError, head = false): void {
  const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${xmlEscape(e.code)}</Code><Message>${xmlEscape(e.message)}</Message>` +
    `<RequestId>${randomUUID()}</RequestId><HostId>fake-aws</HostId></Error>`;
  res.writeHead(e.status, { 'content-type': 'application/xml', ...(head ? {} : { 'content-length': Buffer.byteLength(body) }) });
  res.end(head ? undefined : body);
}
