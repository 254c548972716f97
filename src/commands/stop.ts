/**
 * `index.js stop`, run by the template's after_script. In: the report files a killed job left. Out: its builds
 * stopped and its job token deleted.
 */
import type { Clients } from '../aws/clients';
import { readSettings } from '../inputs/read-settings';
import type { Settings } from '../inputs/settings';
import type { StartMarker } from '../report/files';
import type { Output } from '../shared/console';
import { ExitCode } from '../shared/errors';
import { connect, loadAws } from './connect';

export async function stopCommand(env: NodeJS.ProcessEnv, checkout: string, out: Output): Promise<ExitCode> {
  const settings = readSettings(env, checkout);
  return stop(settings, await connect(settings, out), out);
}

/**
 * `index.js stop`: the template's after_script stops a build the killed job left running, and deletes the job
 * token's parameter (src/registry/job-token.ts) the killed job could not delete. StopBuild goes
 * first, without reading the build (a throttled read must not keep it from being stopped). A build whose
 * StartBuild answer never arrived is found by the marker recorded before StartBuild.
 */
async function stop(settings: Settings, clients: Clients, out: Output): Promise<ExitCode> {
  const { deleteJobToken, readBuildIds, readStartMarker } = await loadAws();
  const buildIds = readBuildIds(settings.reportDir);
  const start = buildIds.length > 0 ? undefined : readStartMarker(settings.reportDir);
  // The job token is written just before the marker says StartBuild was requested: before that, there is none.
  const written = buildIds.length > 0 || start?.requested === true;
  try {
    return await stopBuilds(buildIds, start, clients, out);
  } finally {
    if (written) await deleteJobToken(clients.ssm, settings, out);
  }
}

/** Stops the builds recorded by id, or else the one found by the start marker of a requested StartBuild. */
async function stopBuilds(recorded: string[], start: StartMarker | undefined, clients: Clients, out: Output): Promise<ExitCode> {
  const { findBuildByMarker, stopBuild } = await loadAws();
  const buildIds = [...recorded];
  const failures: unknown[] = [];
  if (start?.requested) {
    out.info("The job ended before StartBuild answered: looking for the build by this job's marker");
    const found = await Promise.allSettled(start.projectNames.map((project) => findBuildByMarker(clients.codebuildOnce, project, start.marker)));
    for (const r of found) {
      if (r.status === 'fulfilled' && r.value) buildIds.push(r.value);
      if (r.status === 'rejected') failures.push(r.reason);
    }
  }
  if (buildIds.length === 0 && failures.length === 0) {
    out.info('No build was started by this job: nothing to stop.');
    return ExitCode.Success;
  }
  // Every build is stopped even when stopping another one failed.
  const stopped = await Promise.allSettled(buildIds.map((id) => stopBuild(clients.codebuildOnce, id, out, { checkWith: clients.codebuild })));
  stopped.forEach((r, i) => {
    if (r.status === 'fulfilled') out.info(`Build ${buildIds[i]}: ${r.value.buildStatus ?? 'stopping'}`);
    else failures.push(r.reason);
  });
  if (failures.length === 0) return ExitCode.Success;
  for (const e of failures.slice(1)) out.error(e instanceof Error ? e.message.split('\n')[0] ?? '' : String(e));
  throw failures[0];
}
