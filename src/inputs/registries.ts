// Registry logins: registry_credentials (secrets, or the job token for GitLab's registry) and ecr_registries,
// with the registries the image and the cache are pushed to.
import { jobTokenParameter, SECRET_REFERENCE } from './aws-names';
import { parseRegistry } from './docker-reference';
import { JobLimits } from './limits';
import { Inputs } from './names';
import { type Problems, readList } from './problems';
import type { GitLabJob, ImageRepository, RegistryLogin } from './settings';
import { shown } from '../shared/shown';

const REGISTRY_CREDENTIALS_USAGE = 'REGISTRY=secretsmanager:<secret-id> (a secret {"username","password"}) or REGISTRY=ssm:<parameter> (username:password)';

/**
 * The logins of registry_credentials, plus GitLab's registry with the job token when the image or the cache is
 * there and no item names it. Items are echoed only up to the `=`: a user may have pasted a password instead of a
 * reference.
 */
export function readRegistryLogins(p: Problems, raw: string, job: GitLabJob, pushedTo: ImageRepository[]): RegistryLogin[] {
  const logins: RegistryLogin[] = [];
  for (const [i, item] of (readList(p, Inputs.RegistryCredentials, raw) ?? []).entries()) {
    const eq = item.indexOf('=');
    const host = item.slice(0, Math.max(eq, 0));
    // As docker tells a registry from a repository name: a dot, a port or localhost (a bare word may be a password).
    const registry = /[.:]/.test(host) || host === 'localhost' ? parseRegistry(host) : undefined;
    const source = /^(secretsmanager|ssm):(.*)$/.exec(item.slice(eq + 1));
    const reference = source?.[2] ?? '';
    if (eq < 0 || !registry) {
      p.add(Inputs.RegistryCredentials, `item ${i + 1} is not ${REGISTRY_CREDENTIALS_USAGE}, with REGISTRY a host such as registry.gitlab.com`);
    } else if (registry.registry.length > JobLimits.registryHost) {
      p.add(Inputs.RegistryCredentials, hostTooLong(registry.registry));
    } else if (registry.ecr) {
      p.add(Inputs.RegistryCredentials, `${registry.registry} is an ECR registry, which the build role logs in to: remove it here and list it in ecr_registries when no image or cache names it`);
    } else if (logins.some((l) => l.registry === registry.registry)) {
      p.add(Inputs.RegistryCredentials, `${registry.registry} is given more than once; keep one`);
    } else if (item.slice(eq + 1) === 'job-token') {
      const login = gitlabRegistryLogin(job, registry.registry);
      if (typeof login === 'string') p.add(Inputs.RegistryCredentials, `${registry.registry}=job-token: ${login}`);
      else logins.push(login);
    } else if (!source) {
      p.add(Inputs.RegistryCredentials, `${registry.registry} must be ${REGISTRY_CREDENTIALS_USAGE}, or job-token for this GitLab's registry; a password never belongs in an input: store it in Secrets Manager or Parameter Store and give its name`);
    } else if (!SECRET_REFERENCE.test(reference) || (source[1] === 'secretsmanager' && reference.split(':').length !== (reference.startsWith('arn:') ? 7 : 1))) {
      p.add(Inputs.RegistryCredentials, `${registry.registry}: after ${source[1]}: give a secret name or ARN, or a parameter name, without spaces or json keys (the secret's username and password keys are read)`);
    } else {
      logins.push({ registry: registry.registry, type: source[1] === 'ssm' ? 'PARAMETER_STORE' : 'SECRETS_MANAGER', reference });
    }
  }
  const gitlab = job.registry;
  if (gitlab && pushedTo.some((r) => r.registry === gitlab) && !logins.some((l) => l.registry === gitlab)) {
    const login = gitlabRegistryLogin(job, gitlab);
    // Outside a GitLab job (no job token) the build goes on without a login and says what to set if refused.
    if (typeof login !== 'string') logins.push(login);
  }
  if (logins.length > JobLimits.registryCredentials) {
    p.add(Inputs.RegistryCredentials, `logs in to ${logins.length} registries${logins.some((l) => l.jobToken) ? ` (with ${job.registry ?? 'GitLab'}'s job token)` : ''}; the job logs in to at most ${JobLimits.registryCredentials} (their names travel together in one CodeBuild variable): pull base images through fewer registries, e.g. an ECR pull-through cache`);
  }
  return logins;
}

function hostTooLong(host: string): string {
  return `${shown(host)} is a registry host of ${host.length} characters; the job takes at most ${JobLimits.registryHost}`;
}

/** A login to GitLab's registry with the job token, or why there cannot be one. */
function gitlabRegistryLogin(job: GitLabJob, registry: string): RegistryLogin | string {
  if (!job.registry) return 'CI_REGISTRY is not set: job-token works in a GitLab job of a GitLab with its container registry enabled';
  if (registry !== job.registry) return `the job token works only for this GitLab's registry, ${shown(job.registry)} (CI_REGISTRY); give secretsmanager: or ssm: credentials for ${registry}`;
  if (!job.jobToken || !job.jobId || !job.projectId) return 'CI_JOB_TOKEN, CI_JOB_ID or CI_PROJECT_ID is not set: job-token works in a GitLab job only';
  return { registry, type: 'PARAMETER_STORE', reference: jobTokenParameter(job.projectId, job.jobId), jobToken: true };
}

/** ECR registries named by the image, the cache or ecr_registries (base images in other accounts' registries). */
export function readEcrRegistries(p: Problems, raw: string, pushedTo: ImageRepository[]): { registry: string; region: string }[] {
  const found = new Map<string, string>();
  for (const repo of pushedTo) if (repo.ecr) found.set(repo.registry, repo.ecr.region);
  const listed = readList(p, Inputs.EcrRegistries, raw) ?? [];
  if (listed.length > JobLimits.ecrRegistries) {
    p.add(Inputs.EcrRegistries, `lists ${listed.length} registries; the job logs in to at most ${JobLimits.ecrRegistries} besides the image's and the cache's (they travel together in one CodeBuild variable)`);
  }
  for (const host of listed) {
    const registry = parseRegistry(host);
    if (host.length > JobLimits.registryHost) p.add(Inputs.EcrRegistries, hostTooLong(host));
    else if (registry?.ecr) found.set(registry.registry, registry.ecr.region);
    else p.add(Inputs.EcrRegistries, `${shown(host)} is not an ECR registry host, <account>.dkr.ecr.<region>.amazonaws.com; other registries go in registry_credentials`);
  }
  return [...found].map(([registry, region]) => ({ registry, region }));
}
