// The program's network against real servers: Debian's tinyproxy, HTTPS servers with a CA made by openssl in
// the test, a server that never answers. A proxied request reaches a server from 127.0.0.2 (tinyproxy's Bind),
// a direct one from 127.0.0.1.
import http from 'node:http';
import https from 'node:https';
import { createServer as createTcpServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatchGetBuildsCommand, CodeBuildClient } from '@aws-sdk/client-codebuild';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestHandler } from '../../src/aws/clients';
import { AwsStepError, awsStep, InputError } from '../../src/shared/errors';
import { createNetwork, type Network } from '../../src/shared/network';
import { makeTestCa, type TestCa } from '../helpers/test-ca';
import { PROXY_PEER, startTinyproxy, type Tinyproxy } from '../helpers/tinyproxy';

interface Seen {
  peer: string;
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
}

interface TestServer {
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}

/** Answers every request as AWS JSON (`{}`); `respond` may answer instead. */
async function startServer(tls: { key: string; cert: string } | undefined, respond?: (req: http.IncomingMessage, res: http.ServerResponse) => boolean): Promise<TestServer> {
  const seen: Seen[] = [];
  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    seen.push({ peer: req.socket.remoteAddress ?? '', method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    req.resume();
    req.on('end', () => {
      if (respond?.(req, res)) return;
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' }).end('{}');
    });
  };
  const server = tls ? https.createServer(tls, handler) : http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    seen,
    close: () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      return closed;
    },
  };
}

/** A TCP server that accepts connections and never sends a byte; stopped with the test file. */
async function startSilentServer(): Promise<number> {
  const sockets: Socket[] = [];
  const server: TcpServer = createTcpServer((s) => sockets.push(s.on('error', () => undefined)));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  stops.push(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return (server.address() as AddressInfo).port;
}

const CREDENTIALS = { accessKeyId: 'AKIAFAKETESTKEY00000', secretAccessKey: 'not-checked' };

function codebuild(net: Network, endpoint: string): CodeBuildClient {
  return new CodeBuildClient({ region: 'us-east-1', endpoint, credentials: CREDENTIALS, maxAttempts: 1, requestHandler: requestHandler('polling', net.awsHandler) });
}

/** What the job prints when the call fails: AwsStepError's message. */
async function failure(call: () => Promise<unknown>): Promise<string> {
  try {
    await awsStep('Reading the build', call);
  } catch (e) {
    expect(e).toBeInstanceOf(AwsStepError);
    return (e as Error).message;
  }
  throw new Error('the call succeeded');
}

let ca: TestCa;
let proxy: Tinyproxy;
let secure: TestServer;
let plain: TestServer;
const stops: (() => Promise<void> | void)[] = [];

beforeAll(async () => {
  ca = makeTestCa();
  stops.push(() => ca.remove());
  proxy = await startTinyproxy();
  stops.push(() => proxy.stop());
  secure = await startServer(ca.issue(['IP:127.0.0.1', 'DNS:localhost']));
  plain = await startServer(undefined);
  stops.push(() => secure.close(), () => plain.close());
});

afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
});

describe('through the proxy', () => {
  it('sends an AWS client over HTTPS through a CONNECT tunnel, trusting AWS_CA_BUNDLE', async () => {
    const net = createNetwork({ HTTPS_PROXY: proxy.url, AWS_CA_BUNDLE: ca.file });
    await codebuild(net, secure.url).send(new BatchGetBuildsCommand({ ids: ['p:1'] }));
    expect(secure.seen.at(-1)).toMatchObject({ peer: PROXY_PEER, method: 'POST', url: '/' });
  });

  it('sends an AWS client over plain HTTP to the proxy in absolute form (HTTP_PROXY, lower case)', async () => {
    const net = createNetwork({ http_proxy: proxy.url });
    await codebuild(net, plain.url).send(new BatchGetBuildsCommand({ ids: ['p:1'] }));
    // tinyproxy adds Via to the requests it forwards (not to tunnels).
    expect(plain.seen.at(-1)).toMatchObject({ peer: PROXY_PEER, headers: { via: expect.stringContaining('tinyproxy') } });
  });

  it('goes directly to the hosts NO_PROXY names, by name, IP, range or port', async () => {
    for (const noProxy of ['127.0.0.1', '127.0.0.0/8', `127.0.0.1:${new URL(plain.url).port}`, '*']) {
      const net = createNetwork({ HTTP_PROXY: proxy.url, NO_PROXY: noProxy });
      await codebuild(net, plain.url).send(new BatchGetBuildsCommand({ ids: ['p:1'] }));
      expect(plain.seen.at(-1)?.peer, noProxy).toBe('127.0.0.1');
    }
    const other = createNetwork({ HTTP_PROXY: proxy.url, NO_PROXY: '127.0.0.1:1' });
    await codebuild(other, plain.url).send(new BatchGetBuildsCommand({ ids: ['p:1'] }));
    expect(plain.seen.at(-1)?.peer).toBe(PROXY_PEER);
  });

  it('uses the credentials in the proxy URL and never shows them', async () => {
    const guarded = await startTinyproxy({ basicAuth: { user: 'svc', password: 'pr0xy-s3cret' } });
    stops.push(() => guarded.stop());
    const withAuth = `http://svc:pr0xy-s3cret@127.0.0.1:${guarded.port}`;
    await codebuild(createNetwork({ HTTPS_PROXY: withAuth, AWS_CA_BUNDLE: ca.file }), secure.url).send(new BatchGetBuildsCommand({ ids: ['p:1'] }));
    expect(secure.seen.at(-1)?.peer).toBe(PROXY_PEER);
    await codebuild(createNetwork({ HTTP_PROXY: withAuth }), plain.url).send(new BatchGetBuildsCommand({ ids: ['p:1'] }));
    expect(plain.seen.at(-1)?.peer).toBe(PROXY_PEER);
    expect(plain.seen.at(-1)?.headers['proxy-authorization']).toBeUndefined();

    const wrong = `http://svc:wr0ng-s3cret@127.0.0.1:${guarded.port}`;
    const line = await failure(() => codebuild(createNetwork({ HTTPS_PROXY: wrong, AWS_CA_BUNDLE: ca.file }), secure.url).send(new BatchGetBuildsCommand({ ids: ['p:1'] })));
    // tinyproxy refuses wrong credentials with 401 (not 407).
    expect(line).toBe(`Reading the build failed: cannot reach ${secure.url.slice(8)} through the proxy 127.0.0.1:${guarded.port} (Bad response: 401); check HTTPS_PROXY/HTTP_PROXY and NO_PROXY`);
    expect(line).not.toContain('s3cret');
  });

  it('sends an S3 upload of 3 MB (the SDK adds Expect: 100-continue) to the proxy in absolute form, with credentials', async () => {
    const guarded = await startTinyproxy({ basicAuth: { user: 'svc', password: 'pr0xy-s3cret' } });
    stops.push(() => guarded.stop());
    const received: number[] = [];
    const bucket = await startServer(undefined, (req, res) => {
      received.push(Number(req.headers['content-length']));
      res.writeHead(200, { etag: '"e"' }).end();
      return true;
    });
    stops.push(() => bucket.close());
    const net = createNetwork({ HTTP_PROXY: `http://svc:pr0xy-s3cret@127.0.0.1:${guarded.port}` });
    const s3 = new S3Client({ region: 'us-east-1', endpoint: bucket.url, forcePathStyle: true, credentials: CREDENTIALS, maxAttempts: 1, requestHandler: requestHandler('polling', net.awsHandler) });
    await s3.send(new PutObjectCommand({ Bucket: 'sources', Key: 'context.zip', Body: Buffer.alloc(3_000_000, 1) }));
    expect(bucket.seen.at(-1)).toMatchObject({ peer: PROXY_PEER, method: 'PUT', url: '/sources/context.zip?x-id=PutObject', headers: { expect: '100-continue' } });
    expect(received).toEqual([3_000_000]);
  });

  it('fetches for GitLab with CI_SERVER_TLS_CA_FILE and for registries with either bundle', async () => {
    const gitlab = createNetwork({ HTTPS_PROXY: proxy.url, CI_SERVER_TLS_CA_FILE: ca.file });
    const res = await gitlab.fetch.gitlab(`${secure.url}/api/v4/job`, { headers: { 'JOB-TOKEN': 'token' } });
    expect(await res.json()).toEqual({});
    expect(secure.seen.at(-1)).toMatchObject({ peer: PROXY_PEER, url: '/api/v4/job', headers: { 'job-token': 'token' } });
    const registry = createNetwork({ HTTPS_PROXY: proxy.url, AWS_CA_BUNDLE: ca.file });
    expect((await registry.fetch.registry(`${secure.url}/v2/`)).status).toBe(200);
    await expect(registry.fetch.gitlab(`${secure.url}/api/v4/job`)).rejects.toMatchObject({ code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });
});

describe('CA bundles and TLS failures', () => {
  it('fails without the CA in one line naming the host and the variable that would supply it', async () => {
    const line = await failure(() => codebuild(createNetwork({ HTTPS_PROXY: proxy.url }), secure.url).send(new BatchGetBuildsCommand({ ids: ['p:1'] })));
    const host = secure.url.slice('https://'.length);
    expect(line).toBe(
      `Reading the build failed: TLS to ${host} through the proxy ${proxy.url.slice(7)}: its certificate is not signed by a CA this job trusts (UNABLE_TO_VERIFY_LEAF_SIGNATURE); give the PEM file of the CA that signs it (a TLS-intercepting proxy's own CA, for one) in AWS_CA_BUNDLE`,
    );
    expect(line).not.toMatch(/reject|verif(y|ication) off|NODE_TLS/i);
    const gitlab = await createNetwork({}).fetch.gitlab(`${secure.url}/api/v4/job`).catch((e: unknown) => e);
    expect(new AwsStepError('Reading the job status', gitlab).message).toContain(`TLS to ${host}: its certificate is not signed by a CA this job trusts (UNABLE_TO_VERIFY_LEAF_SIGNATURE); give the PEM file of the CA that signs it (a TLS-intercepting proxy's own CA, for one) in CI_SERVER_TLS_CA_FILE`);
  });

  it('names a certificate for another host', async () => {
    const elsewhere = await startServer(ca.issue(['DNS:elsewhere.example']));
    stops.push(() => elsewhere.close());
    const line = await failure(() => codebuild(createNetwork({ AWS_CA_BUNDLE: ca.file }), elsewhere.url).send(new BatchGetBuildsCommand({ ids: ['p:1'] })));
    expect(line).toContain(`TLS to ${elsewhere.url.slice(8)}: its certificate is for another host name (ERR_TLS_CERT_ALTNAME_INVALID)`);
  });

  it('keeps Node\'s own roots and NODE_EXTRA_CA_CERTS beside AWS_CA_BUNDLE', async () => {
    const other = makeTestCa();
    stops.push(() => other.remove());
    // The server's CA only in NODE_EXTRA_CA_CERTS, another one in AWS_CA_BUNDLE: both are trusted.
    await codebuild(createNetwork({ AWS_CA_BUNDLE: other.file, NODE_EXTRA_CA_CERTS: ca.file }), secure.url).send(new BatchGetBuildsCommand({ ids: ['p:1'] }));
    expect(secure.seen.at(-1)?.peer).toBe('127.0.0.1');
  });

  it('refuses an unreadable bundle as bad input naming the variable', () => {
    const missing = join(tmpdir(), 'no-such-ca.pem');
    for (const name of ['AWS_CA_BUNDLE', 'CI_SERVER_TLS_CA_FILE']) {
      let error: unknown;
      try {
        createNetwork({ [name]: missing });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(InputError);
      expect((error as InputError).problems).toEqual([{ input: name, message: `cannot read the CA bundle ${missing} (ENOENT); point it to a readable PEM file or unset it` }]);
    }
  });
});

describe('deadlines', () => {
  const short = { connectTimeoutMs: 300, idleTimeoutMs: 300 };

  it('cuts a request whose server never answers after the idle deadline', async () => {
    const silent = await startServer(undefined, () => true);
    stops.push(() => silent.close());
    const started = Date.now();
    const line = await failure(() => codebuild(createNetwork({}, short), silent.url).send(new BatchGetBuildsCommand({ ids: ['p:1'] })));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(line).toMatch(/^Reading the build failed: TimeoutError: .*(timed out after 300 ms of inactivity|no data from 127\.0\.0\.1:\d+ for 0\.3 s)/);
  });

  it('does not cut an answer that keeps coming, as Live Tail\'s updates do', async () => {
    const streaming = await startServer(undefined, (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
      let beats = 0;
      const timer = setInterval(() => {
        res.write(' ');
        if (++beats === 8) {
          clearInterval(timer);
          res.end('{}');
        }
      }, 100);
      return true;
    });
    stops.push(() => streaming.close());
    await codebuild(createNetwork({}, short), streaming.url).send(new BatchGetBuildsCommand({ ids: ['p:1'] }));
    const res = await createNetwork({}, short).fetch.registry(`${streaming.url}/v2/`);
    expect(await res.text()).toBe(`${' '.repeat(8)}{}`);
  });

  it('cuts a TLS handshake that never happens after the connect deadline', async () => {
    const silent = await startSilentServer();
    const started = Date.now();
    const line = await failure(() => codebuild(createNetwork({}, short), `https://127.0.0.1:${silent}`).send(new BatchGetBuildsCommand({ ids: ['p:1'] })));
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(line).toBe(`Reading the build failed: cannot reach 127.0.0.1:${silent} (ETIMEDOUT); if this runner reaches it only through a proxy, set HTTPS_PROXY (and NO_PROXY for the hosts it reaches directly)`);
  });

  it('cuts a proxy that never answers CONNECT after the connect deadline', async () => {
    const silent = await startSilentServer();
    const net = createNetwork({ HTTPS_PROXY: `http://127.0.0.1:${silent}` }, short);
    const started = Date.now();
    const error = await net.fetch.gitlab('https://gitlab.example.com/api/v4/job').catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(new AwsStepError('Reading the job status', error).message).toBe(
      `Reading the job status failed: cannot reach gitlab.example.com:443 through the proxy 127.0.0.1:${silent} (ETIMEDOUT); check HTTPS_PROXY/HTTP_PROXY and NO_PROXY`,
    );
  });
});

describe('agentFetch', () => {
  it('follows redirects, without the authorization header once they leave the origin', async () => {
    const target = await startServer(undefined);
    const origin = await startServer(undefined, (req, res) => {
      if (req.url === '/blob') res.writeHead(307, { location: `${target.url}/s3/blob` }).end();
      else if (req.url === '/upload') res.writeHead(303, { location: '/done' }).end();
      else return false;
      return true;
    });
    stops.push(() => target.close(), () => origin.close());
    const net = createNetwork({});
    expect((await net.fetch.registry(`${origin.url}/blob`, { headers: { authorization: 'Bearer t' } })).status).toBe(200);
    expect(origin.seen.at(-1)?.headers.authorization).toBe('Bearer t');
    expect(target.seen.at(-1)).toMatchObject({ url: '/s3/blob' });
    expect(target.seen.at(-1)?.headers.authorization).toBeUndefined();
    await net.fetch.registry(`${origin.url}/upload`, { method: 'POST', body: 'x', headers: { authorization: 'Bearer t' } });
    expect(origin.seen.at(-1)).toMatchObject({ method: 'GET', url: '/done', headers: { authorization: 'Bearer t' } });
  });

  it('sends a body and reads a 204 without one', async () => {
    const server = await startServer(undefined, (req, res) => (req.method === 'PUT' ? (res.writeHead(204).end(), true) : false));
    stops.push(() => server.close());
    const res = await createNetwork({}).fetch.registry(`${server.url}/v2/a/manifests/t`, { method: 'PUT', body: Buffer.from('{"a":1}') });
    expect(res.status).toBe(204);
    expect(server.seen.at(-1)?.headers['content-length']).toBe('7');
  });
});
