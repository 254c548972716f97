/**
 * The one network setup every connection of the program uses: the proxy variables (src/shared/network-env.ts), the
 * CA bundles, and the connect and idle deadlines. AWS clients take `awsHandler` as their request handler; the
 * registry and GitLab clients take `fetch`.
 */
import { rootCertificates } from 'node:tls';
import { RoutedHttpAgent, RoutedHttpsAgent, Trust } from './agents';
import { agentFetch, type Fetch, type FetchAgents } from './agent-fetch';
import { proxyAddress, readCaBundles, readProxySettings, type ProxySettings } from './network-env';
import { escapeControls } from './shown';

/**
 * How long a connection may take to be ready: TCP, the proxy's CONNECT and the TLS handshake. A healthy one
 * takes well under a second, even across an ocean and a busy proxy; 10 s leaves room for a slow proxy and still
 * lets the SDK's retries (a new connection each) come in time.
 */
export const CONNECT_TIMEOUT_MS = 10_000;

/**
 * How long a connection may carry nothing, either way, while a request uses it. AWS answers within seconds, a
 * Live Tail session sends an update every second even when it has no events, and an upload writes all the time;
 * 30 s of silence means the answer is not coming, and the SDK retries the request (an S3 part too).
 */
export const IDLE_TIMEOUT_MS = 30_000;

/**
 * How long a request whose answer is small may wait for it: each BatchGetBuilds, GetLogEvents and StartLiveTail of
 * the follow loop, the SDK's retries included, and each attempt of S3's HeadObject. One that never answers is then
 * a failure like any other, retried or reported, well before the idle deadline would end it.
 */
export const CALL_DEADLINE_MS = 10_000;

/** Who is reached: each kind trusts its own CA bundle on top of Node's. */
export type Peer = 'aws' | 'gitlab' | 'registry';

/** The variable that supplies each peer's CA bundle. A registry may be ECR or GitLab's, so it trusts both bundles. */
export const CA_VARIABLE: Record<Peer, string> = { aws: 'AWS_CA_BUNDLE', gitlab: 'CI_SERVER_TLS_CA_FILE', registry: 'NODE_EXTRA_CA_CERTS' };

/** NodeHttpHandler options (@smithy/node-http-handler) for an AWS client; plain data, so shared/ needs no SDK. */
export interface AwsHandlerOptions extends FetchAgents {
  connectionTimeout: number;
  socketTimeout: number;
}

export interface Network {
  proxy: ProxySettings;
  /** The request handler options of every AWS client (with AWS_CA_BUNDLE). */
  awsHandler: AwsHandlerOptions;
  /** fetch for the GitLab API (with CI_SERVER_TLS_CA_FILE) and for image registries (with both bundles). */
  fetch: Record<Exclude<Peer, 'aws'>, Fetch>;
}

/**
 * The CAs a peer trusts: undefined (Node's own store, NODE_EXTRA_CA_CERTS included) without a bundle; with one,
 * an explicit list replaces that store, so Node's roots and NODE_EXTRA_CA_CERTS are listed along with it.
 */
function trusted(bundles: (string | undefined)[], extra: string | undefined): Trust {
  const given = bundles.filter((b): b is string => b !== undefined);
  return new Trust(given.length === 0 ? undefined : [...new Set([...rootCertificates, ...(extra ? [extra] : []), ...given])]);
}

export function createNetwork(env: NodeJS.ProcessEnv, deadlines = { connectTimeoutMs: CONNECT_TIMEOUT_MS, idleTimeoutMs: IDLE_TIMEOUT_MS }): Network {
  const proxy = readProxySettings(env);
  const { aws: awsBundle, gitlab: gitlabBundle, extra } = readCaBundles(env);
  const agents = (peer: Peer, trust: Trust): FetchAgents => {
    const route = { noProxy: proxy.noProxy, ...deadlines, caVariable: CA_VARIABLE[peer] };
    return { httpAgent: new RoutedHttpAgent({ ...route, proxy: proxy.http }, trust), httpsAgent: new RoutedHttpsAgent({ ...route, proxy: proxy.https }, trust) };
  };
  const aws = agents('aws', trusted([awsBundle], extra));
  return {
    proxy,
    awsHandler: { ...aws, connectionTimeout: deadlines.connectTimeoutMs, socketTimeout: deadlines.idleTimeoutMs },
    fetch: {
      gitlab: agentFetch(agents('gitlab', trusted([gitlabBundle], extra))),
      registry: agentFetch(agents('registry', trusted([awsBundle, gitlabBundle], extra))),
    },
  };
}

/** The variables a network is made from (src/shared/network-env.ts and the CA bundles). */
export const NETWORK_VARIABLES = [
  ...['https_proxy', 'http_proxy', 'all_proxy', 'no_proxy'].flatMap((n) => [n, n.toUpperCase()]),
  'AWS_CA_BUNDLE',
  'CI_SERVER_TLS_CA_FILE',
  'NODE_EXTRA_CA_CERTS',
];

let current: { key: string; network: Network } | undefined;

/**
 * The job's network, from the process's environment as the SDK reads its endpoints. It is made once and kept
 * (its agents keep connections open) while those variables stay as they were.
 */
export function network(env: NodeJS.ProcessEnv = process.env): Network {
  const key = JSON.stringify(NETWORK_VARIABLES.map((name) => env[name] ?? null));
  if (current?.key !== key) current = { key, network: createNetwork(env) };
  return current.network;
}

/** The start line naming the proxy (host:port, never its credentials) and what bypasses it; undefined without one. */
export function proxyLine({ https, http, noProxy }: ProxySettings): string | undefined {
  if (!https && !http) return undefined;
  const used =
    https && http && proxyAddress(https) === proxyAddress(http)
      ? `proxy ${proxyAddress(https)}`
      : [https && `proxy ${proxyAddress(https)} for https://`, http && `proxy ${proxyAddress(http)} for http://`].filter(Boolean).join(', ');
  const bypass = noProxy.length === 1 && noProxy[0] === '*' ? 'every host (NO_PROXY=*)' : noProxy.length > 0 ? escapeControls(noProxy.join(', ')) : 'none';
  return `Network: ${used}; direct to ${bypass}`;
}
