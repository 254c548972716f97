/**
 * The job's CodeBuild builds: one for the image, or, with several `platforms`, one per platform on the project
 * that builds it natively, all started together (src/follow/builds.ts follows them). Each platform's image is
 * pushed under a tag of its own (`<first tag>-<os>-<arch>`: BuildKit's docker driver cannot push by digest alone);
 * the job then puts one image index over them under every tag (src/registry/image-index.ts).
 */
import type { Build, CodeBuildClient } from '@aws-sdk/client-codebuild';
import { consoleUrl, startBuild, startBuildInput, stopBuild } from './codebuild';
import type { Output } from '../shared/console';
import type { SourceLocation } from './codebuild';
import { platformSlug, type Target } from './targets';

export { buildTargets, platformSlug, type Target } from './targets';

/** A target whose build started: its id, and where its lines go. */
export interface Started extends Target {
  id: string;
  /** StartBuild's answer. */
  build: Build;
  out: Output;
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
    return { ...target, id: build.id ?? '', build, out: targetOut };
  });
}
