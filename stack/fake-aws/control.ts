import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { CodeBuildService } from './codebuild';
import type { Fault, Faults } from './faults';
import type { ModelChecks, Violation } from './models/checks';
import { PROXY_SOURCE_ADDRESS } from './options';

export interface Controlled {
  faults: Faults;
  codebuild: CodeBuildService;
  checks: ModelChecks;
}

/**
 * Test control under /_fake/:
 *   POST /_fake/faults {Fault}       arm a fault        DELETE /_fake/faults   disarm all
 *   GET  /_fake/calls                per-operation call counts   DELETE /_fake/calls  reset them (and the refusals)
 *   GET  /_fake/refusals             calls refused over a quota, by operation and error code (ThrottlingException, ...)
 *   GET  /_fake/builds               builds with status, settings and (redacted) environment
 *   GET  /_fake/violations           what broke AWS's models since the start (nothing clears it)
 *   GET  /_fake/health
 */
export async function handleControl(req: IncomingMessage, res: ServerResponse, path: string, body: string, { faults, codebuild, checks }: Controlled): Promise<void> {
  const send = (status: number, value: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(value));
  };
  const route = `${req.method ?? 'GET'} ${path}`;
  switch (route) {
    case 'GET /_fake/health':
      return send(200, { ok: true });
    case 'POST /_fake/faults':
      try {
        faults.add(JSON.parse(body) as Fault);
      } catch (e) {
        return send(400, { error: (e as Error).message });
      }
      return send(200, { ok: true });
    case 'DELETE /_fake/faults':
      faults.clear();
      return send(200, { ok: true });
    case 'GET /_fake/calls':
      return send(200, faults.callCounts());
    case 'GET /_fake/refusals':
      return send(200, faults.refusalCounts());
    case 'DELETE /_fake/calls':
      faults.resetCalls();
      return send(200, { ok: true });
    case 'GET /_fake/builds':
      return send(200, codebuild.list().map((b) => b.toControl()));
    case 'GET /_fake/violations':
      return send(200, checks.violations());
    default:
      return send(404, { error: `no control route ${route}; see stack/fake-aws/control.ts` });
  }
}

/** Small client for tests and scripts; `caFile` is the stack's CA when the fake speaks https (StackInfo.caFile). */
export const fakeControl = (url: string, caFile?: string) => {
  const ca = caFile === undefined ? undefined : readFileSync(caFile);
  const call = async (method: string, path: string, body?: unknown) => {
    const r = await send(`${url}/_fake/${path}`, method, body === undefined ? undefined : JSON.stringify(body), ca);
    const value: unknown = JSON.parse(r.text);
    if (!r.ok) throw new Error(`fake-aws control ${method} ${path}: ${JSON.stringify(value)}`);
    return value;
  };
  return {
    health: () => call('GET', 'health'),
    inject: (fault: Fault) => call('POST', 'faults', fault),
    clearFaults: () => call('DELETE', 'faults'),
    calls: () => call('GET', 'calls') as Promise<Record<string, number>>,
    resetCalls: () => call('DELETE', 'calls'),
    refusals: () => call('GET', 'refusals') as Promise<Record<string, Record<string, number>>>,
    builds: () => call('GET', 'builds') as Promise<ReturnType<import('./builds').FakeBuild['toControl']>[]>,
    violations: () => call('GET', 'violations') as Promise<Violation[]>,
  };
};

/**
 * One request with node:http(s), which (unlike Node 20's fetch) can trust a private CA, from the proxy's address,
 * which the fake serves in proxy-only mode too.
 */
function send(url: string, method: string, body: string | undefined, ca: Buffer | undefined): Promise<{ ok: boolean; text: string }> {
  return new Promise((resolve, reject) => {
    // A connection of its own each time (agent: false): a kept-alive one, idle while a stack starts or a build
    // runs, may be closed by the fake just as the next call reuses it ("socket hang up").
    const options = { method, localAddress: PROXY_SOURCE_ADDRESS, agent: false };
    const request = url.startsWith('https:') ? httpsRequest(url, { ...options, ...(ca ? { ca } : {}) }) : httpRequest(url, options);
    request.on('error', reject);
    request.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ ok: (res.statusCode ?? 0) < 300, text: Buffer.concat(chunks).toString('utf8') }));
    });
    request.end(body);
  });
}
