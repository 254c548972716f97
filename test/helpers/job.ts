/**
 * The program's entry (`run`) as a GitLab job runs it: a signed OIDC token, the job's variables and the
 * component's inputs, with every AWS endpoint pointed at a local server.
 */
import { generateKeyPair, SignJWT } from 'jose';
import { ExitCode } from '../../src/shared/errors';
import { run } from '../../src/main';
import { NETWORK_VARIABLES } from '../../src/shared/network';
import { memoryOutput } from './output';

/** The OIDC audience (and CI_SERVER_URL) of the jobs. */
export const AUDIENCE = 'https://gitlab.example.com';

/** A JWT for group/app's main branch, signed with a throw-away RS256 key; `claims` add to or override its claims. */
export async function sign(claims: Record<string, unknown>): Promise<string> {
  const { privateKey } = await generateKeyPair('RS256');
  return new SignJWT({ sub: 'project_path:group/app:ref_type:branch:ref:main', ...claims }).setProtectedHeader({ alg: 'RS256' }).sign(privateKey);
}

/** What a job runs with: the checkout directory, the OIDC token and where every AWS request goes. */
export interface JobSetup {
  checkout: string;
  token: string;
  /** AWS_ENDPOINT_URL: a local server that stands in for every AWS service. */
  endpoint: string;
}

/** A valid job; `inputs` are CODEBUILD_IMAGE_* values by input name, `extra` other variables. */
export function jobEnv(job: JobSetup, inputs: Record<string, string> = {}, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    CI_PROJECT_DIR: job.checkout,
    CI_PROJECT_PATH: 'group/app',
    CI_SERVER_URL: AUDIENCE,
    CI_COMMIT_SHORT_SHA: 'abc1234',
    GITLAB_OIDC_TOKEN: job.token,
    AWS_ENDPOINT_URL: job.endpoint,
    AWS_EC2_METADATA_DISABLED: 'true',
    ...extra,
  };
  const defaults = { aws_region: 'eu-west-1', role_arn: 'arn:aws:iam::123456789012:role/builder', project_name: 'builder', oidc_audience: AUDIENCE };
  for (const [k, v] of Object.entries({ ...defaults, ...inputs })) env[`CODEBUILD_IMAGE_${k.toUpperCase()}`] = v;
  return env;
}

/**
 * The SDK's endpoint settings, the one that keeps it off the EC2 instance metadata service, and the proxy and CA
 * variables of the job's network (src/shared/network.ts).
 */
const isSdkSetting = (name: string) => name.startsWith('AWS_ENDPOINT_URL') || name === 'AWS_EC2_METADATA_DISABLED' || NETWORK_VARIABLES.includes(name);

/**
 * Runs the job with `env`. The AWS SDK reads its endpoints from process.env only (src/aws/clients.ts), never
 * from `run`'s env, and so does the job's network, so `env`'s AWS_ENDPOINT_URL*, AWS_EC2_METADATA_DISABLED and
 * network variables are put in process.env for the run, in place of any the process had, and the process's own
 * are put back afterwards.
 */
export async function runJob(
  env: NodeJS.ProcessEnv,
  argv: string[] = [],
  out = memoryOutput(),
): Promise<{ code: ExitCode; lines: string[]; text: string }> {
  const saved = Object.fromEntries(Object.entries(process.env).filter(([name]) => isSdkSetting(name)));
  const use = (settings: NodeJS.ProcessEnv) => {
    for (const name of Object.keys(process.env)) if (isSdkSetting(name)) delete process.env[name];
    for (const [name, value] of Object.entries(settings)) if (isSdkSetting(name) && value !== undefined) process.env[name] = value;
  };
  use(env);
  try {
    const code = await run(argv, env, out);
    return { code, lines: out.lines, text: out.lines.join('\n') };
  } finally {
    use(saved);
  }
}
