/**
 * What both commands start with: the lazy AWS part and the sign-in to AWS.
 * In: settings. Out: the AWS clients, signed in as the job's identity.
 */
import type { Clients } from '../aws/clients';
import type { Settings } from '../inputs/settings';
import type { Output } from '../shared/console';
import { awsStep } from '../shared/errors';

/**
 * The modules that load the AWS SDK (src/aws-part.ts), compiled and evaluated on first use (dist/index.js carries
 * them as strings until then, one per chunk, see scripts/bundle.mjs). Parsing and evaluating them took most of the time
 * before the first output line; now they load after it, while the workers hash the context.
 */
export const loadAws = () => import('../aws-part');

export async function connect(settings: Settings, out: Output): Promise<Clients> {
  const { resolveCredentials, createClients, explainAssumeRoleFailure, network, proxyLine } = await loadAws();
  // The first AWS line: which proxy the job uses, if any (the variables were checked with the inputs).
  const proxy = proxyLine(network().proxy);
  if (proxy) out.info(proxy);
  const { provider, identity } = resolveCredentials(settings, out);
  const clients = createClients(settings.region, provider);
  await awsStep(`Getting AWS credentials (${identity})`, clients.credentials, (e) => explainAssumeRoleFailure(e, settings));
  out.info(`AWS identity: ${identity}, region ${settings.region}`);
  return clients;
}
