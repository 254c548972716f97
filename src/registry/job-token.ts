/**
 * GitLab's container registry with the job's own CI_JOB_TOKEN. The token must not travel in StartBuild: anyone
 * allowed codebuild:BatchGetBuilds reads a build's environment. So the job writes it to a SecureString under
 * JOB_TOKEN_PATH, the build gets only the parameter's name (a PARAMETER_STORE variable that CodeBuild resolves),
 * and the job deletes the parameter when its builds end; `index.js stop` (after_script) deletes it too.
 */
import type { SSMClient } from '@aws-sdk/client-ssm';
import { JOB_TOKEN_PATH } from '../inputs/aws-names';
import type { Output } from '../shared/console';
import { awsStep, errorName } from '../shared/errors';
import type { RegistryLogin, Settings } from '../inputs/settings';

/** The username GitLab's registry takes with a job token (GitLab's CI_REGISTRY_USER). */
export const JOB_TOKEN_USER = 'gitlab-ci-token';

/** The registry login that uses the job token, if any. */
export function jobTokenLogin(s: Settings): RegistryLogin | undefined {
  return s.registryLogins.find((l) => l.jobToken);
}

/** Writes the parameter a job-token login reads, if there is one (the client is made only then). */
export async function putJobToken(ssm: () => Promise<SSMClient>, s: Settings, out: Output): Promise<void> {
  const login = jobTokenLogin(s);
  if (!login || !s.gitlab.jobToken) return;
  const name = login.reference;
  await awsStep(
    `Passing the job token to the build for ${login.registry} (SecureString ${name})`,
    async () => {
      const { PutParameterCommand } = await import('../aws/sdk/ssm');
      const client = await ssm();
      return client.send(
        new PutParameterCommand({
          Name: name,
          Value: `${JOB_TOKEN_USER}:${s.gitlab.jobToken}`,
          Type: 'SecureString',
          // Overwrite: a retried request whose first answer was lost must not fail the job. (Whoever could have
          // written the name before could overwrite it after, so refusing an existing one would protect nothing.)
          Overwrite: true,
          Description: `CI_JOB_TOKEN of GitLab job ${s.gitlab.jobUrl ?? s.gitlab.jobId} for its CodeBuild builds; deleted when they end`,
        }),
      );
    },
    (e) =>
      errorName(e) === 'AccessDeniedException'
        ? `${login.registry} is this GitLab's registry, so the build logs in with the job token, which needs ssm:PutParameter and ` +
          `ssm:DeleteParameter for the CI role on parameter${JOB_TOKEN_PATH}/* (infra/cloudformation.yml grants them with JobTokens=true: ` +
          `read the trust note in docs/registries.md first). Or give registry_credentials for ${login.registry}: a deploy token in Secrets Manager ` +
          'or Parameter Store, listed in SecretArns or ParameterArns.'
        : undefined,
  );
  out.info(`Job token for ${login.registry} passed to the build by reference (SecureString ${name}, deleted when the build ends)`);
}

/** Deletes the job token's parameter, if there is one; never throws (the token itself stops working when the job ends). */
export async function deleteJobToken(ssm: () => Promise<SSMClient>, s: Settings, out: Output): Promise<void> {
  const login = jobTokenLogin(s);
  if (!login) return;
  try {
    const { DeleteParameterCommand } = await import('../aws/sdk/ssm');
    const client = await ssm();
    await client.send(new DeleteParameterCommand({ Name: login.reference }));
    out.info(`Deleted the job token's SecureString ${login.reference}`);
  } catch (e) {
    if (errorName(e) === 'ParameterNotFound') return;
    out.warn(
      `Could not delete the SecureString ${login.reference} that holds this job's token (${errorName(e) ?? 'error'}): ` +
        `the token stops working when the job ends, but delete the parameter, and let the CI role ssm:DeleteParameter on it.`,
    );
  }
}
