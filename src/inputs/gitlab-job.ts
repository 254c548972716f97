// The GitLab job the build runs for, from GitLab's predefined CI_* variables (server, project, pipeline, job,
// commit, registry and job token).
import type { GitLabJob } from './settings';

export function readGitLabJob(env: NodeJS.ProcessEnv): GitLabJob {
  const v = (name: string) => env[name]?.trim() || undefined;
  return {
    serverUrl: v('CI_SERVER_URL'),
    apiUrl: v('CI_API_V4_URL'),
    projectPath: v('CI_PROJECT_PATH'),
    projectId: v('CI_PROJECT_ID'),
    registry: v('CI_REGISTRY'),
    pipelineId: v('CI_PIPELINE_ID'),
    pipelineUrl: v('CI_PIPELINE_URL'),
    jobId: v('CI_JOB_ID'),
    jobUrl: v('CI_JOB_URL'),
    jobName: v('CI_JOB_NAME'),
    commitSha: v('CI_COMMIT_SHA'),
    ref: v('CI_COMMIT_REF_NAME'),
    jobToken: v('CI_JOB_TOKEN'),
  };
}
