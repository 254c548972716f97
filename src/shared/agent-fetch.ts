/**
 * A `fetch` for the program's few small requests outside the AWS SDK (the registry API, GitLab's job status) that
 * goes through the program's agents (proxy, CAs, deadlines, src/shared/agents.ts): Node's own fetch takes no agent.
 * Bodies are read whole (manifests, tokens, job status: a few KB); redirects are followed as fetch does, without
 * the authorization header once they leave the origin.
 */
import http from 'node:http';
import https from 'node:https';

export type Fetch = typeof fetch;

export interface FetchAgents {
  httpAgent: http.Agent;
  httpsAgent: https.Agent;
}

const MAX_REDIRECTS = 20;
const NULL_BODY = new Set([101, 204, 205, 304]);

export function agentFetch(agents: FetchAgents): Fetch {
  return async (input, init = {}) => {
    if (input instanceof Request) throw new TypeError('agentFetch takes a URL, not a Request');
    return send(new URL(input), init, agents, 0);
  };
}

function bodyOf(body: RequestInit['body']): Buffer | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === 'string') return Buffer.from(body);
  if (body instanceof ArrayBuffer) return Buffer.from(body);
  if (ArrayBuffer.isView(body)) return Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  throw new TypeError('agentFetch sends string and byte bodies only');
}

async function send(url: URL, init: RequestInit, agents: FetchAgents, redirects: number): Promise<Response> {
  const method = (init.method ?? 'GET').toUpperCase();
  const headers = new Headers(init.headers);
  const body = bodyOf(init.body);
  const res = await exchange(url, method, headers, body, init.signal ?? undefined, agents);
  const location = res.headers.get('location');
  if (!location || ![301, 302, 303, 307, 308].includes(res.status) || init.redirect === 'manual') return res;
  if (init.redirect === 'error') throw new TypeError(`${url.origin} redirected the request`);
  if (redirects >= MAX_REDIRECTS) throw new TypeError(`more than ${MAX_REDIRECTS} redirects from ${url.origin}`);
  const next = new URL(location, url);
  const nextHeaders = new Headers(headers);
  if (next.origin !== url.origin) nextHeaders.delete('authorization');
  const asGet = res.status === 303 || ((res.status === 301 || res.status === 302) && method === 'POST');
  const nextInit: RequestInit = asGet ? { ...init, method: 'GET', body: null, headers: nextHeaders } : { ...init, headers: nextHeaders };
  return send(next, nextInit, agents, redirects + 1);
}

function exchange(url: URL, method: string, headers: Headers, body: Buffer | undefined, signal: AbortSignal | undefined, agents: FetchAgents): Promise<Response> {
  const secure = url.protocol === 'https:';
  if (!secure && url.protocol !== 'http:') return Promise.reject(new TypeError(`agentFetch speaks http:// and https:// only, not ${url.protocol}`));
  const outgoing: Record<string, string> = Object.fromEntries(headers);
  if (body) outgoing['content-length'] = String(body.length);
  return new Promise((resolve, reject) => {
    const options = { method, headers: outgoing, agent: secure ? agents.httpsAgent : agents.httpAgent, ...(signal ? { signal } : {}) };
    const req = (secure ? https : http).request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', (e) => reject(signal?.aborted ? (signal.reason as unknown) : e));
      res.on('end', () => {
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) responseHeaders.append(name, v);
        }
        const status = res.statusCode ?? 0;
        const content = NULL_BODY.has(status) || method === 'HEAD' ? null : Buffer.concat(chunks);
        resolve(new Response(content, { status, statusText: res.statusMessage ?? '', headers: responseHeaders }));
      });
    });
    // As fetch does, an aborted request rejects with the signal's reason.
    req.on('error', (e) => reject(signal?.aborted ? (signal.reason as unknown) : e));
    req.end(body);
  });
}
