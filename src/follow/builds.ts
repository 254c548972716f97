/**
 * Following the job's builds (src/build/start-builds.ts starts them): all at once, each into its own log file; one
 * that ends without success, or the job's cancellation, stops the others.
 */
import type { Build, CodeBuildClient } from '@aws-sdk/client-codebuild';
import type { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { join } from 'node:path';
import { stopBuild } from '../build/codebuild';
import { platformSlug, type Started, type Target } from '../build/start-builds';
import { followBuild } from './follower';
import { BUILD_LOG_FILE } from './job-log';
import { failedPhase, phaseFailure } from './phases';

export interface Finished extends Target {
  build: Build;
}

/**
 * Stopping builds when the job is cancelled fits in the time a signal leaves (SIGNAL_EXIT_MS in cancel.ts):
 * StopBuild gets 3 s, and the check that the build stopped 1 s more; it then stops in the background.
 */
const CANCELLED_STOP = { requestMs: 3_000, timeoutMs: 1_000, pollMs: 500 };

interface FollowAllDeps {
  codebuild: CodeBuildClient;
  codebuildOnce: CodeBuildClient;
  logs: CloudWatchLogsClient;
  liveTail: CloudWatchLogsClient;
  reportDir: string;
}

/**
 * Follows every build at once, each into its own log file. When the job is cancelled, or one build ends without
 * success, the others are stopped; the returned builds are as they ended (or as stopping left them).
 */
export async function followBuilds(deps: FollowAllDeps, started: Started[], cancelled: AbortSignal): Promise<Finished[]> {
  const controllers = started.map(() => new AbortController());
  const stopAll = (reason: string) => controllers.forEach((c) => c.abort(reason));
  const onCancel = () => stopAll(`Job cancelled (${String(cancelled.reason)})`);
  // Cancelled already (during StartBuild): the followers then stop at once.
  if (cancelled.aborted) onCancel();
  else cancelled.addEventListener('abort', onCancel, { once: true });
  const settled = await Promise.allSettled(
    started.map(async (s, i) => {
      const logFile = join(deps.reportDir, s.platform ? `build-${platformSlug(s.platform)}.log` : BUILD_LOG_FILE);
      try {
        const build = await followBuild({ codebuild: deps.codebuild, logs: deps.logs, tailWith: deps.liveTail, out: s.out, logFile }, s.build, controllers[i]!.signal);
        if (build.buildComplete && build.buildStatus !== 'SUCCEEDED') {
          stopAll(`The ${s.platform ?? ''} build ended ${build.buildStatus ?? ''}`);
        }
        return build;
      } catch (e) {
        // Following gave up: the caller stops every build, so the other followers end too.
        stopAll('Following failed');
        throw e;
      }
    }),
  );
  const gaveUp = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (gaveUp) throw gaveUp.reason;
  const finals = settled.map((r) => (r as PromiseFulfilledResult<Build>).value);
  return Promise.all(
    started.map(async (s, i) => {
      let build = finals[i]!;
      if (!build.buildComplete) {
        s.out.warn(`${String(controllers[i]!.signal.reason)}: stopping build ${s.id}`);
        build = await stopBuild(deps.codebuildOnce, s.id, s.out, { checkWith: deps.codebuild, ...(cancelled.aborted && CANCELLED_STOP) }).catch((e: unknown) => {
          if (!cancelled.aborted) throw e;
          // The job ends now either way: after_script's `stop` tries again.
          s.out.error(`Build ${s.id} may still be running: ${e instanceof Error ? e.message.split('\n')[0] : String(e)}`);
          return build;
        });
        // The follower left before this phase ended, so it did not print it (it does for every other failure).
        const interrupted = failedPhase(build);
        if (interrupted) s.out.error(phaseFailure(interrupted));
      }
      return { platform: s.platform, settings: s.settings, build };
    }),
  );
}
