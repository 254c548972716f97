import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generateBuildspec, resolveBuildspec } from '../../src/buildspec';
import { startBuildInput } from '../../src/codebuild';
import type { Settings } from '../../src/settings';
import { runBuildspec, type BuildspecRun } from '../helpers/buildspec-runner';
import { settingsFixture } from '../helpers/settings-fixture';

const DIGEST = `sha256:${'ab12'.repeat(16)}`;
const OTHER = `sha256:${'cd34'.repeat(16)}`;
const LOCAL = { registry: '127.0.0.1:5000', path: 'team/app', name: '127.0.0.1:5000/team/app' };

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** The environment StartBuild would give the build, with CodeBuild's secret resolution simulated. */
function buildEnv(s: Settings, secrets: Record<string, string> = {}): Record<string, string> {
  const vars = startBuildInput(s, { bucket: 'b', key: 'k.zip' }, '').environmentVariablesOverride ?? [];
  return Object.fromEntries(
    vars.map((v) => [v.name ?? '', v.type === 'PLAINTEXT' ? (v.value ?? '') : (secrets[v.value ?? ''] ?? '<unresolved>')]),
  );
}

function run(s: Settings, extra: Record<string, string> = {}, secrets: Record<string, string> = {}): BuildspecRun {
  const r = runBuildspec(generateBuildspec(s), { ...buildEnv(s, secrets), ...extra });
  dirs.push(r.dir);
  return r;
}

const dockerCalls = (r: BuildspecRun, sub: string) => r.calls.filter((c) => c[0] === 'docker' && c[1] === sub);

describe('generateBuildspec structure', () => {
  it('is a version 0.2 bash buildspec exporting the digest and image reference', () => {
    const doc = parse(generateBuildspec(settingsFixture()));
    expect(doc.version).toBe(0.2);
    expect(doc.env.shell).toBe('bash');
    expect(doc.env['exported-variables']).toEqual(['IMAGE_DIGEST', 'IMAGE_REF']);
    expect(Object.keys(doc.phases)).toEqual(['pre_build', 'build']);
  });

  it('logs in to ECR only when the image is in ECR', () => {
    const ecr = parse(generateBuildspec(settingsFixture()));
    expect(ecr.phases.pre_build.commands.join('\n')).toContain('aws ecr get-login-password --region "$CBI_ECR_REGION"');
    const local = parse(generateBuildspec(settingsFixture({ image: LOCAL })));
    expect(local.phases.pre_build).toBeUndefined();
    expect(JSON.stringify(local)).not.toContain('get-login-password');
  });

  it('never writes user values into the buildspec text', () => {
    const s = settingsFixture({
      image: LOCAL,
      dockerfile: 'docker/$(touch pwned).Dockerfile',
      target: 'final"; rm -rf /; "',
      platform: 'linux/arm64',
      tags: ['v1.2.3', 'latest'],
      buildArgs: [{ name: 'GREETING', value: 'hello $(whoami) `id`' }],
      secretBuildArgs: [{ name: 'NPM_TOKEN', type: 'SECRETS_MANAGER', reference: 'ci/npm:token' }],
      digestVariable: 'API_DIGEST',
    });
    const text = generateBuildspec(s);
    for (const v of ['docker/', 'final', 'linux/arm64', 'v1.2.3', 'GREETING', 'whoami', 'NPM_TOKEN', 'ci/npm', '127.0.0.1:5000']) {
      expect(text).not.toContain(v);
    }
    expect(parse(text).env['exported-variables']).toEqual(['API_DIGEST', 'IMAGE_REF']);
  });

});

describe('generated buildspec executed with fake docker and aws', () => {
  it('logs in to ECR, builds with every tag, pushes each tag and exports the pushed digest', () => {
    const s = settingsFixture({ tags: ['abc1234', 'latest'] });
    const r = run(s, { FAKE_PUSH_DIGEST: DIGEST });
    expect(r.stderr).not.toContain('command failed');
    expect(r.status).toBe(0);
    const name = s.image.name;
    // aws and docker login run as one pipeline, so their order in the record may vary.
    expect(r.calls.filter((c) => c[0] === 'aws')).toEqual([['aws', 'ecr', 'get-login-password', '--region', 'us-east-1']]);
    expect(dockerCalls(r, 'login')).toEqual([
      ['docker', 'login', '--username', 'AWS', '--password-stdin', '000000000000.dkr.ecr.us-east-1.amazonaws.com'],
    ]);
    expect(readFileSync(join(r.dir, 'login-password'), 'utf8')).toBe('ecr-password\n');
    expect(r.calls.findIndex((c) => c[1] === 'login')).toBeLessThan(r.calls.findIndex((c) => c[1] === 'build'));
    expect(dockerCalls(r, 'build')).toEqual([
      ['docker', 'build', '--file', 'Dockerfile', '--tag', `${name}:abc1234`, '--tag', `${name}:latest`, '.'],
    ]);
    expect(dockerCalls(r, 'push')).toEqual([
      ['docker', 'push', `${name}:abc1234`],
      ['docker', 'push', `${name}:latest`],
    ]);
    expect(r.exported).toEqual({ IMAGE_DIGEST: DIGEST, IMAGE_REF: `${name}@${DIGEST}` });
  });

  it('passes target, platform and build args; values reach docker only through its environment', () => {
    const s = settingsFixture({
      image: LOCAL,
      dockerfile: 'docker/my app.Dockerfile',
      target: 'runtime',
      platform: 'linux/arm64',
      buildArgs: [
        { name: 'GREETING', value: 'hello $(whoami) `id` "quoted" \'single\'' },
        { name: 'EMPTY', value: '' },
      ],
      secretBuildArgs: [{ name: 'NPM_TOKEN', type: 'SECRETS_MANAGER', reference: 'ci/npm:token' }],
    });
    const r = run(s, { FAKE_PUSH_DIGEST: DIGEST }, { 'ci/npm:token': 's3cr3t value' });
    expect(r.status).toBe(0);
    expect(r.calls.some((c) => c[0] === 'aws')).toBe(false);
    expect(dockerCalls(r, 'build')).toEqual([[
      'docker', 'build', '--file', 'docker/my app.Dockerfile', '--tag', '127.0.0.1:5000/team/app:abc1234',
      '--target', 'runtime', '--platform', 'linux/arm64',
      '--build-arg', 'GREETING', '--build-arg', 'EMPTY', '--build-arg', 'NPM_TOKEN', '.',
    ]]);
    expect(r.calls.filter((c) => c[0] === 'env').map((c) => c[1])).toEqual([
      'GREETING=hello $(whoami) `id` "quoted" \'single\'',
      'EMPTY=',
      'NPM_TOKEN=s3cr3t value',
    ]);
    expect(r.stdout + r.stderr).not.toContain('s3cr3t');
    expect(r.exported.IMAGE_DIGEST).toBe(DIGEST);
  });

  it('falls back to the RepoDigests entry of this exact repository when push prints no digest', () => {
    const s = settingsFixture({ image: LOCAL });
    const r = run(s, { FAKE_REPO_DIGESTS: `127.0.0.1:5000/team/app-other@${OTHER}\n127.0.0.1:5000/team/app@${DIGEST}` });
    expect(r.status).toBe(0);
    expect(dockerCalls(r, 'image')).toEqual([
      ['docker', 'image', 'inspect', '--format', '{{range .RepoDigests}}{{println .}}{{end}}', '127.0.0.1:5000/team/app:abc1234'],
    ]);
    expect(r.exported).toEqual({ IMAGE_DIGEST: DIGEST, IMAGE_REF: `127.0.0.1:5000/team/app@${DIGEST}` });
  });

  it('fails, exporting nothing, when no digest can be found', () => {
    const r = run(settingsFixture({ image: LOCAL }), { FAKE_REPO_DIGESTS: `elsewhere/app@${DIGEST}` });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('Cannot tell the digest of 127.0.0.1:5000/team/app:abc1234');
    expect(r.exported).toEqual({});
  });

  it('stops at a failing docker build: nothing is pushed', () => {
    const r = run(settingsFixture({ image: LOCAL }), { FAKE_DOCKER_EXIT: '1', FAKE_PUSH_DIGEST: DIGEST });
    expect(r.status).toBe(1);
    expect(dockerCalls(r, 'build')).toHaveLength(1);
    expect(dockerCalls(r, 'push')).toEqual([]);
  });

  it('exports under the configured digest variable name', () => {
    const r = run(settingsFixture({ image: LOCAL, digestVariable: 'API_DIGEST' }), { FAKE_PUSH_DIGEST: DIGEST });
    expect(r.status).toBe(0);
    expect(r.exported).toEqual({ API_DIGEST: DIGEST, IMAGE_REF: `127.0.0.1:5000/team/app@${DIGEST}` });
  });
});

describe('resolveBuildspec', () => {
  it('generates one when no buildspec input is given', () => {
    expect(resolveBuildspec(settingsFixture())).toBe(generateBuildspec(settingsFixture()));
  });

  it("returns the user's file unchanged", () => {
    const text = 'version: 0.2\nphases:\n  build:\n    commands: [make]\n';
    expect(resolveBuildspec(settingsFixture({ buildspec: 'ci/buildspec.yml', buildspecText: text }))).toBe(text);
  });
});
