import { describe, expect, it } from 'vitest';
import { startBuildInput } from '../../src/build/codebuild';
import { buildTargets, platformOutput } from '../../src/build/start-builds';
import { memoryOutput } from '../helpers/output';
import { settingsFixture } from '../helpers/settings-fixture';

const SOURCE = { bucket: 'b', key: 'contexts/k.zip' };
const multi = settingsFixture({
  tags: ['abc1234', 'latest'],
  platformBuilds: [
    { platform: 'linux/amd64', projectName: 'shared-builder' },
    { platform: 'linux/arm64', projectName: 'shared-builder-arm64' },
  ],
});

describe('buildTargets', () => {
  it('is the one build of a single-platform image', () => {
    const s = settingsFixture();
    expect(buildTargets(s)).toEqual([{ platform: undefined, settings: s }]);
  });

  it('gives each platform its project, a tag and a layer cache of its own, and no --platform', () => {
    const targets = buildTargets(multi);
    expect(targets.map((t) => [t.platform, t.settings.projectName, t.settings.tags, t.settings.buildkit.cacheRef, t.settings.platform])).toEqual([
      ['linux/amd64', 'shared-builder', ['abc1234-linux-amd64'], `${multi.image.name}:buildcache-linux-amd64`, undefined],
      ['linux/arm64', 'shared-builder-arm64', ['abc1234-linux-arm64'], `${multi.image.name}:buildcache-linux-arm64`, undefined],
    ]);
  });

  it('gives every platform a StartBuild token of its own that a retried job repeats', () => {
    const tokens = () => buildTargets(multi).map((t) => startBuildInput(t.settings, SOURCE, 'spec', 'marker').idempotencyToken);
    const first = tokens();
    expect(new Set(first).size).toBe(2);
    expect(tokens()).toEqual(first);
  });
});

describe('platformOutput', () => {
  it('marks every line with the platform and gives its sections ids of their own', () => {
    const out = memoryOutput();
    const arm = platformOutput(out, 'linux/arm64');
    arm.sectionStart('build', 'BUILD', true);
    arm.info('#5 0.1 hello');
    arm.error('Phase BUILD FAILED');
    arm.sectionEnd('build');
    expect(out.lines).toEqual([
      '[section build_linux-arm64] [linux/arm64] BUILD',
      '[linux/arm64] #5 0.1 hello',
      'ERROR: [linux/arm64] Phase BUILD FAILED',
      '[end build_linux-arm64]',
    ]);
  });
});
