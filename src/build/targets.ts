/**
 * The builds a job's settings make: one for the image, or one per platform of `platforms`, each with the tag and
 * cache reference of its own. Free of the AWS SDK, so the input check (request-limits.ts) sees every request.
 */
import type { Settings } from '../inputs/settings';

/** One build of the job: the whole image (`platform` undefined), or one platform of it. */
export interface Target {
  platform: string | undefined;
  settings: Settings;
}

/** `linux/arm64` as `linux-arm64`, for tags, cache refs, section ids and log files. */
export function platformSlug(platform: string): string {
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
