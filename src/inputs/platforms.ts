// The platforms to build for: platform, or platforms with platform_projects (one native build each) or emulation.
import { PROJECT_NAME } from './aws-names';
import { PLATFORM } from './docker-reference';
import { type InputName, Inputs } from './names';
import { type Problems, readBoolean, readList } from './problems';
import type { PlatformBuild } from './settings';
import { shown } from '../shared/shown';

function readPlatform(p: Problems, raw: string, generatedBuildspec: boolean): string | undefined {
  if (!raw) return undefined;
  const list = raw.split(',').map((s) => s.trim());
  const bad = list.filter((s) => !PLATFORM.test(s));
  if (bad.length > 0) p.add(Inputs.Platform, `${bad.map((b) => shown(b)).join(', ')} is not os/arch[/variant], e.g. linux/amd64 or linux/arm64`);
  // The generated buildspec runs `docker build`, which builds one platform; a custom buildspec may use buildx.
  else if (list.length > 1 && generatedBuildspec) {
    p.add(Inputs.Platform, `${shown(raw)} names ${list.length} platforms: list them in platforms instead, which builds each natively and joins them in one image index`);
  }
  return list.join(',');
}

/** Platforms a GitLab dotenv report can name one digest variable each for, within its 20 variables. */
export const MAX_PLATFORMS = 8;

/**
 * `platform` (one platform, or a BuildKit list for a custom buildspec) or `platforms`: several platforms are built
 * natively, one build each on the project `platform_projects` maps them to (by default as infra/ makes them:
 * `<project>` for linux/amd64, `<project>-arm64` for linux/arm64), or with `emulation` in one build through QEMU.
 */
export function readPlatforms(
  p: Problems,
  get: (input: InputName) => string,
  projectName: string,
  generatedBuildspec: boolean,
): { platform: string | undefined; builds: PlatformBuild[]; emulation: boolean } {
  const single = readPlatform(p, get(Inputs.Platform), generatedBuildspec);
  const list = [...new Set(readList(p, Inputs.Platforms, get(Inputs.Platforms)) ?? [])];
  const emulation = readBoolean(p, Inputs.Emulation, get(Inputs.Emulation), false);
  const none = { platform: single, builds: [], emulation: false };
  const bad = list.filter((s) => !PLATFORM.test(s));
  if (bad.length > 0) {
    p.add(Inputs.Platforms, `${bad.map((b) => shown(b)).join(', ')} is not os/arch[/variant], e.g. linux/amd64 or linux/arm64`);
    return none;
  }
  if (list.length > 0 && single) p.add(Inputs.Platforms, 'is given together with platform: give one of them');
  if (list.length > MAX_PLATFORMS) p.add(Inputs.Platforms, `names ${list.length} platforms; at most ${MAX_PLATFORMS} fit the dotenv report`);
  if (list.length <= 1) return { ...none, platform: single ?? list[0] };
  if (!generatedBuildspec) {
    p.add(Inputs.Platforms, 'with more than one platform needs the generated buildspec: clear buildspec, or build each platform in a job of its own');
    return none;
  }
  if (emulation) return { platform: list.join(','), builds: [], emulation: true };
  const projects = new Map([['linux/amd64', projectName], ['linux/arm64', `${projectName}-arm64`]]);
  for (const item of readList(p, Inputs.PlatformProjects, get(Inputs.PlatformProjects)) ?? []) {
    const [platform = '', project = ''] = item.split('=', 2);
    if (!PLATFORM.test(platform) || !PROJECT_NAME.test(project)) {
      p.add(Inputs.PlatformProjects, `${shown(item)} is not <os/arch>=<CodeBuild project>, e.g. linux/arm64=image-builder-arm64`);
    } else projects.set(platform, project);
  }
  const builds = list.map((platform) => ({ platform, projectName: projects.get(platform) ?? '' }));
  for (const b of builds.filter((x) => !x.projectName)) {
    p.add(Inputs.PlatformProjects, `names no project that builds ${b.platform} natively: add ${b.platform}=<project>, or set emulation: true to build it through QEMU`);
  }
  return { platform: undefined, builds, emulation: false };
}
