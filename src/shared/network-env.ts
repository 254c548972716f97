/**
 * The network variables: the CA bundles, and the proxy variables as curl reads them: `https_proxy`/`HTTPS_PROXY` for https:// URLs, `http_proxy`/`HTTP_PROXY`
 * for http:// ones, `all_proxy`/`ALL_PROXY` for both, the lower-case name first; and `no_proxy`/`NO_PROXY`, a comma-
 * or space-separated list of hosts that are reached directly: `*` (every host), a name (that host and every host
 * under it, with or without a leading `.` or `*.`), an IP address or CIDR range, each optionally with `:port`.
 */
import { readFileSync } from 'node:fs';
import { BlockList, isIP } from 'node:net';
import { InputError, type InputProblem } from './errors';

export interface ProxySettings {
  /** The proxy for https:// URLs (a CONNECT tunnel), if any. */
  https?: URL;
  /** The proxy for http:// URLs (requests in absolute form), if any. */
  http?: URL;
  /** The NO_PROXY entries, as given (for the start line). */
  noProxy: string[];
}

const SCHEMES = new Set(['http:', 'https:']);

function variable(env: NodeJS.ProcessEnv, name: string): { name: string; value: string } | undefined {
  for (const n of [name.toLowerCase(), name.toUpperCase()]) {
    const value = env[n]?.trim();
    if (value) return { name: n, value };
  }
  return undefined;
}

/** A proxy URL; one without a scheme is http:// as in curl. Malformed or unsupported: bad input naming the variable. */
function proxyUrl(found: { name: string; value: string } | undefined): URL | undefined {
  if (!found) return undefined;
  const text = /^[a-z][a-z0-9+.-]*:\/\//i.test(found.value) ? found.value : `http://${found.value}`;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    // The value may hold credentials: it is never shown.
    throw new InputError([{ input: found.name, message: 'is not a URL; set it to http://host:port (or http://user:password@host:port)' }]);
  }
  if (!SCHEMES.has(url.protocol)) {
    throw new InputError([{ input: found.name, message: `uses ${url.protocol.slice(0, -1)}://, which this job does not speak; give an http:// or https:// proxy` }]);
  }
  return url;
}

export function readProxySettings(env: NodeJS.ProcessEnv): ProxySettings {
  const all = proxyUrl(variable(env, 'all_proxy'));
  const https = proxyUrl(variable(env, 'https_proxy')) ?? all;
  const http = proxyUrl(variable(env, 'http_proxy')) ?? all;
  const noProxy = (variable(env, 'no_proxy')?.value ?? '').split(/[\s,]+/).filter(Boolean);
  return { ...(https ? { https } : {}), ...(http ? { http } : {}), noProxy };
}

/** The CA bundles' PEM text, by the variable that names the file. */
export interface CaBundles {
  /** AWS_CA_BUNDLE: for AWS connections. */
  aws?: string;
  /** CI_SERVER_TLS_CA_FILE: for the GitLab API. */
  gitlab?: string;
  /** NODE_EXTRA_CA_CERTS: Node reads it at start-up; kept here for the connections that list their CAs. */
  extra?: string;
}

/** A CA bundle file's PEM text; an unreadable one is bad input naming its variable. */
function readBundle(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const file = env[name];
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new InputError([{ input: name, message: `cannot read the CA bundle ${file} (${code}); point it to a readable PEM file or unset it` }]);
  }
}

export function readCaBundles(env: NodeJS.ProcessEnv): CaBundles {
  const aws = readBundle(env, 'AWS_CA_BUNDLE');
  const gitlab = readBundle(env, 'CI_SERVER_TLS_CA_FILE');
  // A file Node could not read was already reported by Node, as a warning, and is left out here too.
  let extra: string | undefined;
  try {
    extra = readBundle(env, 'NODE_EXTRA_CA_CERTS');
  } catch {
    extra = undefined;
  }
  return { ...(aws ? { aws } : {}), ...(gitlab ? { gitlab } : {}), ...(extra ? { extra } : {}) };
}

/** Every problem with the network variables, for the input check (src/inputs/read-settings.ts). */
export function networkProblems(env: NodeJS.ProcessEnv): InputProblem[] {
  const problems: InputProblem[] = [];
  for (const read of [readProxySettings, readCaBundles]) {
    try {
      read(env);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      problems.push(...e.problems);
    }
  }
  return problems;
}

/** `host:port` of a proxy, never its credentials. */
export function proxyAddress(url: URL): string {
  return `${url.hostname}:${url.port || (url.protocol === 'https:' ? 443 : 80)}`;
}

/** Whether NO_PROXY sends `host` (a name or an IP address, without brackets) on `port` directly. */
export function bypassesProxy(noProxy: readonly string[], host: string, port: number): boolean {
  const name = host.toLowerCase().replace(/^\[|\]$/g, '').replace(/\.$/, '');
  return noProxy.some((entry) => matches(entry.toLowerCase(), name, port));
}

function matches(entry: string, host: string, port: number): boolean {
  if (entry === '*') return true;
  // `host:port`, `[v6]:port`; a bare IPv6 address has colons but no port.
  const withPort = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(entry);
  const pattern = (withPort ? withPort[1]! : entry).replace(/^\[|\]$/g, '');
  if (withPort && Number(withPort[2]) !== port) return false;
  const family = isIP(host);
  if (family !== 0) return matchesAddress(pattern, host, family === 6 ? 'ipv6' : 'ipv4');
  const suffix = pattern.replace(/^\*?\.?/, '').replace(/\.$/, '');
  return suffix !== '' && (host === suffix || host.endsWith(`.${suffix}`));
}

function matchesAddress(pattern: string, address: string, type: 'ipv4' | 'ipv6'): boolean {
  const [base = '', bits] = pattern.split('/');
  const family = isIP(base);
  if (family === 0 || (family === 6) !== (type === 'ipv6')) return false;
  const list = new BlockList();
  if (bits === undefined) list.addAddress(base, type);
  else if (/^\d+$/.test(bits) && Number(bits) <= (type === 'ipv6' ? 128 : 32)) list.addSubnet(base, Number(bits), type);
  else return false;
  return list.check(address, type);
}
