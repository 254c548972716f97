/**
 * Node agents for every connection the program makes: each request goes through the proxy its scheme's
 * variable names unless NO_PROXY lists its host (https:// in a CONNECT tunnel, by hpagent; http:// in absolute
 * form, as curl does), within a connect deadline and an idle deadline, and a failure names the host it concerns.
 */
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HttpsProxyAgent } from 'hpagent';
import { bypassesProxy, proxyAddress } from './network-env';

export interface Route {
  /** The proxy for this agent's scheme, if any. */
  proxy?: URL | undefined;
  noProxy: readonly string[];
  connectTimeoutMs: number;
  idleTimeoutMs: number;
  /** The variable that would supply the CA of the hosts this agent reaches, for the TLS failure line. */
  caVariable: string;
}

/** Where a failed connection was going, attached to its error as `connection` (read by src/shared/errors.ts). */
export interface ConnectionFacts {
  /** host:port of the server, or of the proxy when the request went to the proxy itself (http:// through a proxy). */
  target: string;
  /** host:port of the proxy in between, if any. */
  proxy?: string;
  caVariable: string;
  /** `connect`: the connection never became ready (refused, unresolved, too slow, TLS refused); `open`: it failed later. */
  stage?: 'connect' | 'open';
}

/** Node's createConnection callback; `Opened` is how a connection attempt reports back to `establish`. */
type Callback = (err: Error | null, socket: Duplex) => void;
type Opened = (err: Error | null, socket?: Duplex) => void;

const POOL = { keepAlive: true, maxSockets: 50 } as const;

function tagged<E extends Error>(e: E, facts: ConnectionFacts, stage: ConnectionFacts['stage'] = 'open'): E {
  return Object.assign(e, { connection: (e as { connection?: ConnectionFacts }).connection ?? { ...facts, stage } });
}

function timeoutError(message: string): Error {
  return Object.assign(new Error(message), { name: 'TimeoutError', code: 'ETIMEDOUT' });
}

/**
 * Opens a connection and hands it over once it is ready (`ready`: connect, or secureConnect after the TLS
 * handshake), or the failure, at the latest after the connect deadline. Then the idle deadline applies to it.
 */
function establish(route: Route, facts: ConnectionFacts, ready: 'connect' | 'secureConnect', open: (done: Opened) => void, callback: Callback): void {
  let settled = false;
  let socket: Duplex | undefined;
  const settle = (err: Error | null) => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    if (err || !socket) {
      socket?.destroy();
      (callback as (e: Error) => void)(tagged(err ?? new Error(`no connection to ${facts.target}`), facts, 'connect'));
    } else callback(null, socket);
  };
  const timer = setTimeout(() => settle(timeoutError(`no connection to ${facts.target} within ${route.connectTimeoutMs / 1000} s`)), route.connectTimeoutMs);
  open((err, s) => {
    if (err || !s) return settle(err ?? new Error(`no connection to ${facts.target}`));
    if (settled) return void s.destroy();
    socket = s;
    // Registered first, so the request's own error handler sees the tagged error.
    s.on('error', (e) => settle(tagged(e, facts, settled ? 'open' : 'connect')));
    (s as Socket).setTimeout(route.idleTimeoutMs);
    s.on('timeout', () => s.destroy(tagged(timeoutError(`no data from ${facts.target} for ${route.idleTimeoutMs / 1000} s`), facts)));
    s.once(ready, () => settle(null));
  });
}

/** https:// requests: directly or through a CONNECT tunnel, with the CAs given (`ca`, or Node's own store). */
export class RoutedHttpsAgent extends https.Agent {
  private readonly tunnel: HttpsProxyAgent | undefined;

  constructor(
    private readonly route: Route,
    ca: string[] | undefined,
  ) {
    const options = { ...POOL, timeout: route.idleTimeoutMs, ...(ca ? { ca } : {}) };
    super(options);
    this.tunnel = route.proxy && new HttpsProxyAgent({ ...options, proxy: route.proxy, proxyRequestOptions: ca ? { ca } : {} });
  }

  override createConnection(options: https.RequestOptions, callback?: Callback): Duplex | null | undefined {
    const host = String(options.host ?? 'localhost');
    const port = Number(options.port ?? 443);
    const tunnel = this.tunnel && !bypassesProxy(this.route.noProxy, host, port) ? this.tunnel : undefined;
    const facts: ConnectionFacts = { target: `${host}:${port}`, caVariable: this.route.caVariable, ...(tunnel && this.route.proxy ? { proxy: proxyAddress(this.route.proxy) } : {}) };
    const open = (done: Opened) => (tunnel ? tunnel.createConnection(options, done) : done(null, super.createConnection(options) ?? undefined));
    establish(this.route, facts, 'secureConnect', open, callback ?? (() => undefined));
    return undefined;
  }
}

/** What Node's http.Agent does with each request; not in @types/node. */
interface AgentInternals {
  addRequest(req: http.ClientRequest, options: http.RequestOptions): void;
}

/** http:// requests: directly, or to the proxy in absolute form (`GET http://host:port/path`). */
export class RoutedHttpAgent extends http.Agent {
  constructor(private readonly route: Route) {
    super({ ...POOL, timeout: route.idleTimeoutMs });
  }

  addRequest(req: http.ClientRequest, options: http.RequestOptions): void {
    const addRequest = (http.Agent.prototype as unknown as AgentInternals).addRequest.bind(this);
    const host = String(options.host ?? 'localhost');
    const port = Number(options.port ?? 80);
    const proxy = this.route.proxy;
    if (!proxy || bypassesProxy(this.route.noProxy, host, port)) return addRequest(req, options);
    const absolute = `http://${host.includes(':') ? `[${host}]` : host}:${port}${req.path}`;
    const auth = proxy.username || proxy.password ? `Basic ${Buffer.from(`${decodeURIComponent(proxy.username)}:${decodeURIComponent(proxy.password)}`).toString('base64')}` : undefined;
    // With `Expect: 100-continue` (the SDK's S3 uploads of 2 MB and more) Node has already rendered the request's
    // head (its private `_header`) and queued it (`outputData`): both are rewritten in place, as http-proxy-agent
    // does. Otherwise the path and header are set before the head is rendered.
    const head = req as http.ClientRequest & { _header?: string | null; outputData?: { data: unknown }[] };
    const rendered = head._header;
    if (rendered) {
      const rewritten = rendered.replace(/^(\S+) \S+/, `$1 ${absolute}`).replace(/\r\n\r\n$/, auth ? `\r\nproxy-authorization: ${auth}\r\n\r\n` : '\r\n\r\n');
      head._header = rewritten;
      const queued = head.outputData?.[0];
      if (queued && typeof queued.data === 'string' && queued.data.startsWith(rendered)) queued.data = rewritten + queued.data.slice(rendered.length);
    } else {
      req.path = absolute;
      if (auth) req.setHeader('proxy-authorization', auth);
    }
    addRequest(req, { ...options, host: proxy.hostname.replace(/^\[|\]$/g, ''), port: Number(proxy.port || 80) });
  }

  override createConnection(options: http.ClientRequestArgs, callback?: Callback): Duplex | null | undefined {
    const target = `${String(options.host ?? 'localhost')}:${Number(options.port ?? 80)}`;
    const facts: ConnectionFacts = { target, caVariable: this.route.caVariable, ...(this.route.proxy && target === proxyAddress(this.route.proxy) ? { proxy: target } : {}) };
    establish(this.route, facts, 'connect', (done: Opened) => done(null, super.createConnection(options) ?? undefined), callback ?? (() => undefined));
    return undefined;
  }
}
