/**
 * The job's CodeBuild builds: one for the image, or, with several `platforms`, one per platform on the project
 * that builds it natively, started and followed together. Each platform's image is pushed under a tag of its own
 * (`<first tag>-<os>-<arch>`: BuildKit's docker driver cannot push by digest alone); the job then puts one image
 * index over them under every tag (src/registry/distribution.ts).
 */
import type { Build, CodeBuildClient } from '@aws-sdk/client-codebuild';
import type { CloudWatchLogsClient } from '@aws-sdk/client-cloudwatch-logs';
import { join } from 'node:path';
import { consoleUrl, startBuild, startBuildInput, stopBuild } from './codebuild';
import type { Output } from '../shared/console';
import { followBuild } from '../follow/follower';
import { BUILD_LOG_FILE } from '../follow/job-log';
import { failedPhase, phaseFailure } from '../follow/phases';
import type { Settings } from '../inputs/settings';
import type { SourceLocation } from './codebuild';

/** One build of the job: the whole image (`platform` undefined), or one platform of it. */
export interface Target {
  platform: string | undefined;
  settings: Settings;
}

interface Started extends Target {
  id: string;
  out: Output;
}

export interface Finished extends Target {
  build: Build;
}

function platformSlug(platform: string): string {
  return platform.replaceAll('/', '-');
}

export function buildTargets(s: Settings): Target[] {
  if (s.platformBuilds.length === 0) return [{ platform: undefined, settings: s }];
  return s.platformBuilds.map(({ platform, projectName }) => {
    const slug = platformSlug(platform);
    const cacheRef = s.buildkit.cacheRef && `${s.buildkit.cacheRef}-${slug}`;
    // Built natively: no --platform, so a project that builds another platform shows up when the index is made.
    const settings: Settings = { ...s, projectName, platform: undefined, tags: [`${s.tags[0]}-${slug}`], buildkit: { ...s.buildkit, cacheRef } };
    return { platform, settings };
  });
}

/** Lines of one platform's build, each marked with its platform; its sections get ids of their own. */
export function platformOutput(out: Output, platform: string): Output {
  const mark = (line: string) => `[${platform}] ${line}`;
  const id = (section: string) => `${section}_${platformSlug(platform)}`;
  return {
    info: (line) => out.info(mark(line)),
    warn: (line) => out.warn(mark(line)),
    error: (line) => out.error(mark(line)),
    sectionStart: (section, title, collapsed, at) => out.sectionStart(id(section), mark(title), collapsed, at),
    sectionEnd: (section, at) => out.sectionEnd(id(section), at),
  };
}

/** Starts every target's build at once; a failure to start one stops those already started. */
export async function startBuilds(
  clients: { once: CodeBuildClient; polling: CodeBuildClient },
  targets: Target[],
  source: SourceLocation,
  buildspec: string,
  marker: string,
  out: Output,
  /** Called with the build ids before anything is printed (the job may be killed once they show). */
  record: (buildIds: string[]) => void,
): Promise<Started[]> {
  const results = await Promise.allSettled(targets.map((t) => startBuild(clients.once, startBuildInput(t.settings, source, buildspec, marker))));
  const started = results.flatMap((r, i) => (r.status === 'fulfilled' && r.value.id ? [{ target: targets[i]!, build: r.value }] : []));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.allSettled(started.map((s) => stopBuild(clients.once, s.build.id ?? '', out, { checkWith: clients.polling })));
    throw failed.reason;
  }
  record(started.map((s) => s.build.id ?? ''));
  return started.map(({ target, build }) => {
    const targetOut = target.platform ? platformOutput(out, target.platform) : out;
    targetOut.info(`CodeBuild build ${build.id ?? ''}`);
    targetOut.info(`Console: ${consoleUrl(target.settings.region, build)}`);
    return { ...target, id: build.id ?? '', out: targetOut };
  });
}

interface FollowAllDeps {
  codebuild: CodeBuildClient;
  codebuildOnce: CodeBuildClient;
  logs: CloudWatchLogsClient;
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
        const build = await followBuild({ codebuild: deps.codebuild, logs: deps.logs, out: s.out, logFile }, s.id, controllers[i]!.signal);
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
        build = await stopBuild(deps.codebuildOnce, s.id, s.out, { checkWith: deps.codebuild });
        // The follower left before this phase ended, so it did not print it (it does for every other failure).
        const interrupted = failedPhase(build);
        if (interrupted) s.out.error(phaseFailure(interrupted));
      }
      return { platform: s.platform, settings: s.settings, build };
    }),
  );
}
