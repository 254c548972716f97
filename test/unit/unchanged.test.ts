import { describe, expect, it } from 'vitest';
import { inputsTag } from '../../src/build/unchanged';
import { settingsFixture } from '../helpers/settings-fixture';

const DIGEST = 'a'.repeat(64);

describe('inputsTag', () => {
  it('is a valid Docker tag, the same for the same inputs whatever the tags', () => {
    const tag = inputsTag(settingsFixture(), DIGEST);
    expect(tag).toMatch(/^cbi-inputs-[0-9a-f]{40}$/);
    expect(inputsTag(settingsFixture({ tags: ['other', 'latest'] }), DIGEST)).toBe(tag);
  });

  it('changes with the context, Dockerfile, target, platforms, build args, secret references and attestations', () => {
    const base = settingsFixture();
    const tags = [
      inputsTag(base, DIGEST),
      inputsTag(base, 'b'.repeat(64)),
      inputsTag(settingsFixture({ dockerfile: 'docker/Dockerfile' }), DIGEST),
      inputsTag(settingsFixture({ target: 'runtime' }), DIGEST),
      inputsTag(settingsFixture({ platform: 'linux/arm64' }), DIGEST),
      inputsTag(settingsFixture({ platformBuilds: [{ platform: 'linux/amd64', projectName: 'p' }, { platform: 'linux/arm64', projectName: 'p-arm64' }] }), DIGEST),
      inputsTag(settingsFixture({ buildArgs: [{ name: 'MODE', value: 'release' }] }), DIGEST),
      inputsTag(settingsFixture({ secretBuildArgs: [{ name: 'NPM_TOKEN', type: 'SECRETS_MANAGER', reference: 'ci/npm' }] }), DIGEST),
      inputsTag(settingsFixture({ buildkit: { ...base.buildkit, attestations: false } }), DIGEST),
    ];
    expect(new Set(tags).size).toBe(tags.length);
  });
});
