import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { generateBuildspec, resolveBuildspec } from '../../src/build/buildspec';
import { startBuildInput } from '../../src/build/codebuild';
import type { Settings } from '../../src/inputs/settings';
import { runBuildspec, type BuildspecRun } from '../helpers/buildspec-runner';
import { settingsFixture } from '../helpers/settings-fixture';

const DIGEST = `sha256:${'ab12'.repeat(16)}`;
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

const dockerCalls = (r: BuildspecRun, ...sub: string[]) =>
  r.calls.filter((c) => c[0] === 'docker' && sub.every((word, i) => c[i + 1] === word));
/** The socket and URL of each curl call (the engine's API). */
const engineApiCalls = (r: BuildspecRun) => r.calls.filter((c) => c[0] === 'curl').map((c) => c.slice(-3));
/** What engineApiCalls gives for one call on `socket`. */
const engineApi = (socket: string) => [['--unix-socket', socket, 'http://localhost/info']];
const buildxArgs = (r: BuildspecRun) => dockerCalls(r, 'buildx', 'build').map((c) => c.slice(3));
const WARM = { FAKE_DIGEST: DIGEST, FAKE_CONTAINERD_STORE: '1' };
const CACHE = '000000000000.dkr.ecr.us-east-1.amazonaws.com/group/app:buildcache';
const CACHE_TO = `type=registry,ref=${CACHE},mode=max,image-manifest=true,oci-mediatypes=true,ignore-error=true`;

describe('generateBuildspec structure', () => {
  it('is a version 0.2 bash buildspec exporting the digest, image reference and media type', () => {
    const doc = parse(generateBuildspec(settingsFixture()));
    expect(doc.version).toBe(0.2);
    expect(doc.env.shell).toBe('bash');
    expect(doc.env['exported-variables']).toEqual(['IMAGE_DIGEST', 'IMAGE_REF', 'IMAGE_MEDIA_TYPE']);
    expect(Object.keys(doc.phases)).toEqual(['pre_build', 'build']);
  });

  it('keeps the job log quiet: each command is one short line, the script travels in env.variables', () => {
    const doc = parse(generateBuildspec(settingsFixture()));
    const commands: string[] = [...doc.phases.pre_build.commands, ...doc.phases.build.commands];
    expect(commands).toEqual([
      'bash -c "$CBI_SH" prepare',
      'bash -c "$CBI_SH" build',
      '. "${TMPDIR:-/tmp}/codebuild-image-${CODEBUILD_BUILD_ID##*:}.env"',
    ]);
    expect(doc.env.variables.CBI_SH).toContain('docker_with_build_args "${args[@]}" .');
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
    expect(parse(text).env['exported-variables']).toEqual(['API_DIGEST', 'IMAGE_REF', 'IMAGE_MEDIA_TYPE']);
  });

});

describe('generated buildspec executed with fake docker and aws', () => {
  it('logs in to ECR, builds with buildx, the registry cache and provenance, and exports what buildx pushed', () => {
    const s = settingsFixture({ tags: ['abc1234', 'latest'] });
    const r = run(s, WARM);
    expect(r.stderr).not.toContain('command failed');
    expect(r.status).toBe(0);
    const name = s.image.name;
    // aws and docker login run as one pipeline, so their order in the record may vary.
    expect(r.calls.filter((c) => c[0] === 'aws')).toEqual([['aws', 'ecr', 'get-login-password', '--region', 'us-east-1']]);
    expect(dockerCalls(r, 'login')).toEqual([
      ['docker', 'login', '--username', 'AWS', '--password-stdin', '000000000000.dkr.ecr.us-east-1.amazonaws.com'],
    ]);
    expect(readFileSync(join(r.dir, 'login-password'), 'utf8')).toBe('ecr-password\n');
    expect(r.calls.findIndex((c) => c[1] === 'login')).toBeLessThan(r.calls.findIndex((c) => c[1] === 'buildx'));
    expect(r.stdout).toContain('Builder: Docker engine on the containerd image store');
    // prepare asks the engine's API once (docker info would also start every CLI plugin); the build step does not ask again
    expect(engineApiCalls(r)).toEqual(engineApi('/var/run/docker.sock'));
    expect(dockerCalls(r, 'info')).toEqual([]);
    expect(buildxArgs(r)).toEqual([[
      '--progress', 'plain', '--push', '--metadata-file', expect.stringMatching(/^\//), '--file', 'Dockerfile',
      '--tag', `${name}:abc1234`, '--tag', `${name}:latest`,
      '--cache-from', `type=registry,ref=${CACHE}`, '--cache-to', CACHE_TO,
      '--provenance', 'mode=max', '.',
    ]]);
    expect(r.exported).toEqual({
      IMAGE_DIGEST: DIGEST,
      IMAGE_REF: `${name}@${DIGEST}`,
      IMAGE_MEDIA_TYPE: 'application/vnd.oci.image.index.v1+json',
    });
  });

  const warnings = (r: BuildspecRun) => r.stdout.split('\n').filter((l) => l.startsWith('Warning:'));

  it('says after a first build that it had no cache to read and wrote one, asking the registry nothing beforehand', () => {
    const r = run(settingsFixture(), { ...WARM, FAKE_CACHE_IMPORT_ERROR: `failed to configure registry cache importer: ${CACHE}: not found` });
    expect(r.status).toBe(0);
    expect(warnings(r)).toEqual([`Warning: no layer cache at ${CACHE} yet; this build fills it`]);
    expect(buildxArgs(r)[0]).toEqual(expect.arrayContaining(['--cache-from', `type=registry,ref=${CACHE}`, '--cache-to', CACHE_TO]));
    // docker login and the build: each docker buildx call also starts docker and the plugin's metadata call.
    expect(r.calls.filter((c) => c[0] === 'docker').map((c) => c[1])).toEqual(['login', 'buildx']);
    expect(r.exported.IMAGE_DIGEST).toBe(DIGEST);
  });

  it('says when the cache could not be read for another reason, or not written, and still exports the digest', () => {
    const r = run(settingsFixture(), {
      ...WARM,
      FAKE_CACHE_IMPORT_ERROR: 'unexpected status from HEAD request: 403 Forbidden',
      FAKE_CACHE_EXPORT_ERROR: 'failed to push: 403 Forbidden',
    });
    expect(r.status).toBe(0);
    expect(warnings(r)).toEqual([
      expect.stringMatching(new RegExp(`^Warning: the layer cache at ${CACHE.replace(/\./g, '\\.')} could not be read .*this build ran without it$`)),
      expect.stringMatching(new RegExp(`^Warning: the layer cache could not be written to ${CACHE.replace(/\./g, '\\.')} `)),
    ]);
    expect(r.exported.IMAGE_DIGEST).toBe(DIGEST);
  });

  it('does not promise a cache that a first build cannot write, nor one from a build that failed', () => {
    const notFound = `failed to configure registry cache importer: ${CACHE}: not found`;
    const unwritable = run(settingsFixture(), { ...WARM, FAKE_CACHE_IMPORT_ERROR: notFound, FAKE_CACHE_EXPORT_ERROR: 'failed to push: 403 Forbidden' });
    expect(unwritable.status).toBe(0);
    expect(warnings(unwritable)).toEqual([`Warning: no layer cache at ${CACHE} yet`, expect.stringMatching(/^Warning: the layer cache could not be written to /)]);
    const failed = run(settingsFixture(), { ...WARM, FAKE_CACHE_IMPORT_ERROR: notFound, FAKE_BUILD_ERROR: 'ERROR: process "/bin/sh -c make" did not complete successfully: exit code: 2' });
    expect(failed.status).not.toBe(0);
    expect(warnings(failed)).toEqual([`Warning: no layer cache at ${CACHE} yet`]);
  });

  it('prints no cache warning when the cache was read and written', () => {
    const r = run(settingsFixture(), WARM);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('#11 exporting cache to registry');
    expect(warnings(r)).toEqual([]);
  });

  it('builds without cache flags when the cache is off, and without attestations when they are off', () => {
    const s = settingsFixture({ buildkit: { ...settingsFixture().buildkit, cacheRef: undefined, attestations: false } });
    const r = run(s, WARM);
    expect(r.status).toBe(0);
    const args = buildxArgs(r)[0] ?? [];
    expect(args.filter((a) => a.startsWith('--cache'))).toEqual([]);
    expect(args).toEqual(expect.arrayContaining(['--provenance=false', '--sbom=false']));
  });

  it('adds an SBOM when asked', () => {
    const r = run(settingsFixture({ buildkit: { ...settingsFixture().buildkit, sbom: true } }), WARM);
    expect(buildxArgs(r)[0]).toEqual(expect.arrayContaining(['--provenance', 'mode=max', '--sbom=true']));
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
      buildkit: { ...settingsFixture().buildkit, cacheRef: undefined },
    });
    const r = run(s, { ...WARM, CBI_BUILD_NETWORK: 'host' });
    expect(r.status).toBe(0);
    expect(r.calls.some((c) => c[0] === 'aws')).toBe(false);
    expect(buildxArgs(r)[0]).toEqual([
      '--progress', 'plain', '--push', '--metadata-file', expect.stringMatching(/^\//), '--file', 'docker/my app.Dockerfile',
      '--tag', '127.0.0.1:5000/team/app:abc1234', '--target', 'runtime', '--platform', 'linux/arm64', '--network', 'host',
      '--build-arg', 'GREETING', '--build-arg', 'EMPTY', '--provenance', 'mode=max', '.',
    ]);
    expect(r.calls.filter((c) => c[0] === 'env').map((c) => c[1])).toEqual([
      'GREETING=hello $(whoami) `id` "quoted" \'single\'',
      'EMPTY=',
    ]);
  });

  it("gives build args named like the shell's or docker's own variables to docker alone, configured as without them", () => {
    const names = { PATH: '/opt/custom/bin', HOME: '/custom/home', DOCKER_CONFIG: '/custom/config', UID: '1000', BASH_ENV: '', LD_PRELOAD: '' };
    const dir = mkdtempSync(join(tmpdir(), 'cbi-bash-env-'));
    dirs.push(dir);
    // A BASH_ENV that leaves a mark in every bash that reads it; LD_PRELOAD that the loader cannot preload.
    writeFileSync(join(dir, 'bash-env'), `echo sourced >> ${join(dir, 'marks')}\n`);
    const values = { ...names, BASH_ENV: join(dir, 'bash-env'), LD_PRELOAD: join(dir, 'missing.so') };
    const s = settingsFixture({ image: LOCAL, buildArgs: Object.entries(values).map(([name, value]) => ({ name, value })) });
    const r = run(s, WARM);
    expect(r.status, r.stderr).toBe(0);
    expect(r.exported.IMAGE_DIGEST).toBe(DIGEST);
    expect(r.calls.filter((c) => c[0] === 'env').map((c) => c[1])).toEqual(Object.entries(values).map(([k, v]) => `${k}=${v}`));
    // Only the read-only UID goes through env(1)'s command line; the others are exported by a subshell.
    expect(r.calls.filter((c) => c[0] === 'envcmd').map((c) => c.slice(1, 3))).toEqual([['UID=1000', expect.stringMatching(/\/docker$/)]]);
    // docker found by the script's PATH and given the script's own configuration, where the logins are.
    expect(r.calls.filter((c) => c[0] === 'config')).toEqual([['config', join(r.dir, '.docker')]]);
    expect(existsSync(join(dir, 'marks'))).toBe(false);
    // The script's shell kept its own PATH after the build: its grep, sed and cut found the digest.
    expect(r.stdout).toContain(`Pushed 127.0.0.1:5000/team/app@${DIGEST}`);
  });

  it('passes secret build args as BuildKit secrets read from the environment, never as build args', () => {
    const s = settingsFixture({
      image: LOCAL,
      secretBuildArgs: [{ name: 'NPM_TOKEN', type: 'SECRETS_MANAGER', reference: 'ci/npm:token' }],
    });
    const r = run(s, WARM, { 'ci/npm:token': 's3cr3t value' });
    expect(r.status).toBe(0);
    const args = buildxArgs(r)[0] ?? [];
    expect(args).toEqual(expect.arrayContaining(['--secret', 'id=NPM_TOKEN,env=CBI_ARG_NPM_TOKEN']));
    expect(args).not.toContain('--build-arg');
    expect(r.calls.filter((c) => c[0] === 'secret').map((c) => c[1])).toEqual(['CBI_ARG_NPM_TOKEN=s3cr3t value']);
    expect(r.stdout + r.stderr).not.toContain('s3cr3t');
  });

  it('passes secret build args as plain build args only when asked to', () => {
    const s = settingsFixture({
      image: LOCAL,
      secretBuildArgs: [{ name: 'NPM_TOKEN', type: 'SECRETS_MANAGER', reference: 'ci/npm:token' }],
      buildkit: { ...settingsFixture().buildkit, secretsAs: 'build-arg' },
    });
    const r = run(s, WARM, { 'ci/npm:token': 's3cr3t value' });
    expect(r.status).toBe(0);
    const args = buildxArgs(r)[0] ?? [];
    expect(args).not.toContain('--secret');
    expect(r.calls.filter((c) => c[0] === 'env').map((c) => c[1])).toEqual(['NPM_TOKEN=s3cr3t value']);
    // On no command line: not docker's, not env(1)'s.
    expect(r.calls.filter((c) => c.join('\t').includes('s3cr3t')).map((c) => c[0])).toEqual(['env']);
  });

  it('creates a docker-container builder from buildkit_image when asked', () => {
    const image = 'registry.example.com/moby/buildkit:v0.26.2';
    const s = settingsFixture({ image: LOCAL, buildkit: { ...settingsFixture().buildkit, builder: 'docker-container', buildkitImage: image } });
    const r = run(s, { FAKE_DIGEST: DIGEST });
    expect(r.status).toBe(0);
    expect(dockerCalls(r, 'buildx', 'create')).toEqual([[
      'docker', 'buildx', 'create', '--name', 'codebuild-image', '--driver', 'docker-container',
      '--driver-opt', `image=${image}`, '--driver-opt', 'network=host', '--use', '--bootstrap',
    ]]);
    expect(buildxArgs(r)[0]).toEqual(expect.arrayContaining(['--cache-to', '--provenance', 'mode=max']));
  });

  it('with builder docker on an engine that cannot export, builds without cache and attestations, saying so', () => {
    const s = settingsFixture({ image: LOCAL, buildkit: { ...settingsFixture().buildkit, builder: 'docker' } });
    const r = run(s, { FAKE_DIGEST: DIGEST });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Builder: the Docker engine as it is');
    // The engine's API said overlay2.
    expect(engineApiCalls(r)).toHaveLength(1);
    expect(dockerCalls(r, 'info')).toEqual([]);
    expect(r.stdout.split('\n').filter((l) => l.startsWith('Warning:'))).toHaveLength(2);
    const args = buildxArgs(r)[0] ?? [];
    expect(args.filter((a) => a.startsWith('--cache'))).toEqual([]);
    expect(args).toEqual(expect.arrayContaining(['--provenance=false', '--sbom=false']));
    expect(r.exported.IMAGE_DIGEST).toBe(DIGEST);
  });

  it("asks docker info where docker would not use a local socket, or the engine's API does not answer", () => {
    // A docker config choosing a context, as DOCKER_CONFIG and as the default ~/.docker.
    const config = mkdtempSync(join(tmpdir(), 'cbi-docker-config-'));
    dirs.push(config);
    writeFileSync(join(config, 'config.json'), '{"auths":{},"currentContext":"remote"}');
    const home = mkdtempSync(join(tmpdir(), 'cbi-home-'));
    dirs.push(home);
    mkdirSync(join(home, '.docker'));
    writeFileSync(join(home, '.docker', 'config.json'), '{"currentContext":"remote"}');
    const cases: [Record<string, string>, string[][], number][] = [
      // [environment, curl calls (socket and URL), docker info calls]
      [{ DOCKER_HOST: 'unix:///run/user/1000/docker.sock' }, engineApi('/run/user/1000/docker.sock'), 0],
      [{ DOCKER_HOST: 'tcp://127.0.0.1:2375' }, [], 1],
      [{ DOCKER_CONTEXT: 'remote' }, [], 1],
      [{ DOCKER_CONFIG: config }, [], 1],
      [{ HOME: home }, [], 1],
      // DOCKER_HOST wins over any context, as in docker.
      [{ DOCKER_HOST: 'unix:///var/run/docker.sock', DOCKER_CONTEXT: 'remote' }, engineApi('/var/run/docker.sock'), 0],
      [{ FAKE_NO_ENGINE_API: '1' }, engineApi('/var/run/docker.sock'), 1],
    ];
    for (const [extra, curl, info] of cases) {
      const r = run(settingsFixture(), { ...WARM, ...extra });
      expect(r.status, r.stderr).toBe(0);
      expect(engineApiCalls(r)).toEqual(curl);
      expect(dockerCalls(r, 'info')).toHaveLength(info);
      expect(r.stdout).toContain('Builder: Docker engine on the containerd image store');
    }
  });

  it('fails, exporting nothing, when buildx reports no digest', () => {
    const r = run(settingsFixture({ image: LOCAL }), { ...WARM, FAKE_DIGEST: '' });
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('docker buildx reported no image digest for 127.0.0.1:5000/team/app');
    expect(r.exported).toEqual({});
  });

  it('stops at a failing build: nothing is exported', () => {
    const r = run(settingsFixture({ image: LOCAL }), { ...WARM, FAKE_DOCKER_EXIT: '1' });
    expect(r.status).not.toBe(0);
    expect(r.exported).toEqual({});
  });

  it('exports under the configured digest variable name, with the single-manifest media type', () => {
    const media = 'application/vnd.oci.image.manifest.v1+json';
    const r = run(settingsFixture({ image: LOCAL, digestVariable: 'API_DIGEST' }), { ...WARM, FAKE_MEDIA_TYPE: media });
    expect(r.status).toBe(0);
    expect(r.exported).toEqual({ API_DIGEST: DIGEST, IMAGE_REF: `127.0.0.1:5000/team/app@${DIGEST}`, IMAGE_MEDIA_TYPE: media });
  });
});

describe('generated buildspec with emulation', () => {
  const emulated = (platform: string, binfmtImage?: string) =>
    settingsFixture({ image: LOCAL, platform, emulation: true, buildkit: { ...settingsFixture().buildkit, binfmtImage } });

  it('builds every platform in the one build, through QEMU handlers the host has', () => {
    const r = run(emulated('linux/amd64,linux/arm64'), WARM);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Emulation: QEMU handlers present for linux/amd64,linux/arm64');
    expect(buildxArgs(r)[0]).toEqual(expect.arrayContaining(['--platform', 'linux/amd64,linux/arm64']));
    expect(dockerCalls(r, 'run')).toEqual([]);
  });

  it('installs missing handlers from binfmt_image, and without one fails naming the input', () => {
    const image = 'registry.example.com/tonistiigi/binfmt:qemu-v9.2.2';
    const r = run(emulated('linux/amd64,linux/loong64', image), WARM);
    expect(r.status).toBe(0);
    expect(dockerCalls(r, 'run')).toEqual([['docker', 'run', '--privileged', '--rm', image, '--install', 'all']]);
    const without = run(emulated('linux/amd64,linux/loong64'), WARM);
    expect(without.status).not.toBe(0);
    expect(without.stderr).toContain('No QEMU handler for loong64 on this host: set binfmt_image');
    expect(dockerCalls(without, 'buildx', 'build')).toEqual([]);
  });
});

describe('generated buildspec with registry logins', () => {
  const GITLAB = { registry: 'registry.gitlab.com', path: 'group/app', name: 'registry.gitlab.com/group/app' };
  const PASSWORD = 'p@ss word$(id)"\'';
  const logins = (r: BuildspecRun) =>
    readFileSync(join(r.dir, 'logins'), 'utf8').split('\n').filter(Boolean).map((l) => l.split('\t'));
  const withLogins = (more: Partial<Settings> = {}) =>
    settingsFixture({
      image: GITLAB,
      registryLogins: [
        { registry: 'registry.gitlab.com', type: 'SECRETS_MANAGER', reference: 'ci/gitlab' },
        { registry: 'docker.io', type: 'PARAMETER_STORE', reference: '/ci/hub' },
        { registry: 'ghcr.io', type: 'PARAMETER_STORE', reference: '/ci/ghcr' },
      ],
      ecrRegistries: [{ registry: '210987654321.dkr.ecr.eu-west-1.amazonaws.com', region: 'eu-west-1' }],
      ...more,
    });
  const SECRETS = {
    'ci/gitlab:username': 'deployer',
    'ci/gitlab:password': PASSWORD,
    '/ci/hub': `hubuser:${PASSWORD}`,
    '/ci/ghcr': JSON.stringify({ username: 'octo', password: PASSWORD }),
  };

  it('logs in to each registry before building, every password on standard input only', () => {
    const r = run(withLogins(), { ...WARM }, SECRETS);
    expect(r.status).toBe(0);
    expect(r.calls.filter((c) => c[0] === 'aws')).toEqual([['aws', 'ecr', 'get-login-password', '--region', 'eu-west-1']]);
    expect(dockerCalls(r, 'login').map((c) => c.slice(2))).toEqual([
      ['--username', 'AWS', '--password-stdin', '210987654321.dkr.ecr.eu-west-1.amazonaws.com'],
      ['--username', 'deployer', '--password-stdin', 'registry.gitlab.com'],
      ['--username', 'hubuser', '--password-stdin', 'docker.io'],
      ['--username', 'octo', '--password-stdin', 'ghcr.io'],
    ]);
    expect(logins(r).slice(1)).toEqual([['registry.gitlab.com', PASSWORD], ['docker.io', PASSWORD], ['ghcr.io', PASSWORD]]);
    expect(r.calls.findLastIndex((c) => c[1] === 'login')).toBeLessThan(r.calls.findIndex((c) => c[1] === 'buildx'));
    expect(JSON.stringify(r.calls.filter((c) => c[1] !== 'login'))).not.toContain('p@ss');
    expect(r.stdout + r.stderr).not.toContain('p@ss');
  });

  it('passes only references to StartBuild', () => {
    const vars = startBuildInput(withLogins(), { bucket: 'b', key: 'k.zip' }, '').environmentVariablesOverride ?? [];
    expect(vars.filter((v) => v.name?.startsWith('CBI_LOGIN_') || v.name === 'CBI_ECR_REGISTRIES')).toEqual([
      { name: 'CBI_ECR_REGISTRIES', value: 'eu-west-1=210987654321.dkr.ecr.eu-west-1.amazonaws.com', type: 'PLAINTEXT' },
      { name: 'CBI_LOGIN_REGISTRIES', value: 'registry.gitlab.com docker.io ghcr.io', type: 'PLAINTEXT' },
      { name: 'CBI_LOGIN_USER_0', value: 'ci/gitlab:username', type: 'SECRETS_MANAGER' },
      { name: 'CBI_LOGIN_PASSWORD_0', value: 'ci/gitlab:password', type: 'SECRETS_MANAGER' },
      { name: 'CBI_LOGIN_CREDENTIAL_1', value: '/ci/hub', type: 'PARAMETER_STORE' },
      { name: 'CBI_LOGIN_CREDENTIAL_2', value: '/ci/ghcr', type: 'PARAMETER_STORE' },
    ]);
  });

  it('stops before building when a registry refuses the credentials, naming the input', () => {
    const r = run(withLogins(), { ...WARM, FAKE_LOGIN_REFUSED: 'docker.io' }, SECRETS);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('docker.io refused the credentials registry_credentials names for it');
    expect(dockerCalls(r, 'buildx', 'build')).toEqual([]);
  });

  it('refuses a parameter without a password before logging in', () => {
    const r = run(withLogins(), { ...WARM }, { ...SECRETS, '/ci/hub': 'hubuser' });
    expect(r.stderr).toContain('The credentials registry_credentials names for docker.io have no username or no password');
    expect(dockerCalls(r, 'login').map((c) => c.at(-1))).not.toContain('docker.io');
  });

  it.each([
    ['a registry without credentials', 'ERROR: failed to solve: failed to resolve source metadata for r.example.com:5001/base:1: unexpected status from HEAD request to http://r.example.com:5001/v2/base/manifests/1: 401 Unauthorized',
      'Error: r.example.com:5001 asked for credentials: set registry_credentials: ["r.example.com:5001=secretsmanager:<secret-id>"]'],
    ['a registry refusing the credentials given', 'ERROR: failed to push registry.gitlab.com/group/app:abc1234: failed to authorize: failed to fetch oauth token: unexpected status from POST request to https://gitlab.com/jwt/auth: 403 Forbidden',
      'Error: registry.gitlab.com refused access with the credentials registry_credentials names for it'],
    ['Docker Hub (credentials given), whose token service has a host of its own', 'ERROR: failed to solve: docker.io/acme/private:1: failed to resolve source metadata for docker.io/acme/private:1: failed to authorize: failed to fetch anonymous token: unexpected status from GET request to https://auth.docker.io/token?scope=repository%3Aacme%2Fprivate%3Apull&service=registry.docker.io: 401 Unauthorized',
      'Error: docker.io refused access with the credentials registry_credentials names for it'],
    ['an ECR registry of another account', 'ERROR: failed to solve: 111122223333.dkr.ecr.eu-west-1.amazonaws.com/base:1: failed to resolve source metadata for 111122223333.dkr.ecr.eu-west-1.amazonaws.com/base:1: unexpected status from HEAD request to https://111122223333.dkr.ecr.eu-west-1.amazonaws.com/v2/base/manifests/1: 401 Unauthorized',
      'Error: 111122223333.dkr.ecr.eu-west-1.amazonaws.com (ECR) refused access: add it to ecr_registries'],
  ])('explains a build that failed on %s in one line', (_name, error, line) => {
    const r = run(withLogins(), { ...WARM, FAKE_BUILD_ERROR: error }, SECRETS);
    expect(r.status).not.toBe(0);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('Error: '))).toEqual([expect.stringContaining(line)]);
    expect(r.exported.IMAGE_DIGEST).toBeFalsy();
  });

  it('adds nothing to a build that failed for another reason, even when reading the cache was refused', () => {
    const failed = 'ERROR: process "/bin/sh -c make" did not complete successfully: exit code: 2';
    for (const [importError, importLine] of [['', '#3 DONE'], ['failed to authorize: 401 Unauthorized', '#3 ERROR: failed to authorize: 401 Unauthorized']]) {
      const r = run(withLogins(), { ...WARM, FAKE_BUILD_ERROR: failed, FAKE_CACHE_IMPORT_ERROR: importError ?? '' }, SECRETS);
      expect(r.status).not.toBe(0);
      expect(r.stdout).toContain(importLine);
      expect(r.stderr).not.toContain('Error: ');
    }
  });
});

describe("generated buildspec with GitLab's registry and the job token", () => {
  const TOKEN = 'glcbt-64_job-token-value';
  const PARAMETER = '/codebuild-image/job-tokens/42/2002';
  const withJobToken = () =>
    settingsFixture({
      image: { registry: 'registry.gitlab.example.com', path: 'group/app', name: 'registry.gitlab.example.com/group/app' },
      registryLogins: [{ registry: 'registry.gitlab.example.com', type: 'PARAMETER_STORE', reference: PARAMETER, jobToken: true }],
      gitlab: { ...settingsFixture().gitlab, jobToken: TOKEN },
    });

  it('passes StartBuild the parameter name only, and the build logs in as gitlab-ci-token with what CodeBuild resolved', () => {
    const input = startBuildInput(withJobToken(), { bucket: 'b', key: 'k.zip' }, '');
    expect(input.environmentVariablesOverride?.filter((v) => v.name?.startsWith('CBI_LOGIN_') || v.name === 'CBI_JOB_TOKEN_REGISTRY')).toEqual([
      { name: 'CBI_LOGIN_REGISTRIES', value: 'registry.gitlab.example.com', type: 'PLAINTEXT' },
      { name: 'CBI_JOB_TOKEN_REGISTRY', value: 'registry.gitlab.example.com', type: 'PLAINTEXT' },
      { name: 'CBI_LOGIN_CREDENTIAL_0', value: PARAMETER, type: 'PARAMETER_STORE' },
    ]);
    expect(JSON.stringify(input)).not.toContain(TOKEN);

    const r = run(withJobToken(), { ...WARM }, { [PARAMETER]: `gitlab-ci-token:${TOKEN}` });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Logging in to registry.gitlab.example.com with the job token');
    expect(dockerCalls(r, 'login').map((c) => c.slice(2))).toEqual([['--username', 'gitlab-ci-token', '--password-stdin', 'registry.gitlab.example.com']]);
    expect(r.stdout + r.stderr + JSON.stringify(r.calls)).not.toContain(TOKEN);
  });

  it('says the job token was refused, and what to do, when GitLab refuses it', () => {
    const refused = run(withJobToken(), { ...WARM, FAKE_LOGIN_REFUSED: 'registry.gitlab.example.com' }, { [PARAMETER]: `gitlab-ci-token:${TOKEN}` });
    expect(refused.status).not.toBe(0);
    expect(refused.stderr).toContain("registry.gitlab.example.com refused the job token: the job's project must be allowed there; or give registry_credentials for registry.gitlab.example.com");

    const error = 'ERROR: failed to solve: registry.gitlab.example.com/other/base:1: failed to resolve source metadata for registry.gitlab.example.com/other/base:1: failed to authorize: failed to fetch oauth token: unexpected status from GET request to https://gitlab.example.com/jwt/auth: 403 Forbidden';
    const denied = run(withJobToken(), { ...WARM, FAKE_BUILD_ERROR: error }, { [PARAMETER]: `gitlab-ci-token:${TOKEN}` });
    expect(denied.stderr.split('\n').filter((l) => l.startsWith('Error: '))).toEqual([
      "Error: registry.gitlab.example.com refused access with the job token: this job's project may pull and push only its own and allowed projects' images there; or give registry_credentials for registry.gitlab.example.com",
    ]);
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
