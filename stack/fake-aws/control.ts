import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CodeBuildService } from './codebuild';
import type { Fault, Faults } from './faults';
import type { ModelChecks, Violation } from './models/checks';

export interface Controlled {
  faults: Faults;
  codebuild: CodeBuildService;
  checks: ModelChecks;
}

/**
 * Test control under /_fake/:
 *   POST /_fake/faults {Fault}       arm a fault        DELETE /_fake/faults   disarm all
 *   GET  /_fake/calls                per-operation call counts   DELETE /_fake/calls  reset them
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

/** Small client for tests and scripts. */
export const fakeControl = (url: string) => {
  const call = async (method: string, path: string, body?: unknown) => {
    const r = await fetch(`${url}/_fake/${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    const value: unknown = await r.json();
    if (!r.ok) throw new Error(`fake-aws control ${method} ${path}: ${JSON.stringify(value)}`);
    return value;
  };
  return {
    inject: (fault: Fault) => call('POST', 'faults', fault),
    clearFaults: () => call('DELETE', 'faults'),
    calls: () => call('GET', 'calls') as Promise<Record<string, number>>,
    resetCalls: () => call('DELETE', 'calls'),
    builds: () => call('GET', 'builds') as Promise<ReturnType<import('./builds').FakeBuild['toControl']>[]>,
    violations: () => call('GET', 'violations') as Promise<Violation[]>,
  };
};
