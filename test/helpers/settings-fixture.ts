import type { Settings } from '../../src/settings';

const ECR_IMAGE: Settings['image'] = {
  registry: '000000000000.dkr.ecr.us-east-1.amazonaws.com',
  path: 'group/app',
  name: '000000000000.dkr.ecr.us-east-1.amazonaws.com/group/app',
  ecr: { account: '000000000000', region: 'us-east-1' },
};

/** A complete, valid Settings object for unit tests; override what the test is about. */
export function settingsFixture(overrides: Partial<Settings> = {}): Settings {
  const image = overrides.image ?? ECR_IMAGE;
  return {
    region: 'us-east-1',
    roleArn: 'arn:aws:iam::000000000000:role/gitlab-builder',
    idTokenVariable: 'GITLAB_OIDC_TOKEN',
    idToken: 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln',
    oidcAudience: 'https://gitlab.example.com',
    sessionDuration: 3600,
    projectName: 'shared-builder',
    s3Bucket: 'codebuild-image-000000000000-us-east-1',
    s3Prefix: 'contexts',
    contextDir: '/builds/group/app',
    dockerfile: 'Dockerfile',
    target: undefined,
    platform: undefined,
    platformBuilds: [],
    emulation: false,
    buildArgs: [],
    secretBuildArgs: [],
    image,
    registryLogins: [],
    // As readSettings derives it from the image (the cache shares its registry).
    ecrRegistries: image.ecr ? [{ registry: image.registry, region: image.ecr.region }] : [],
    tags: ['abc1234'],
    buildspec: undefined,
    buildspecText: undefined,
    digestVariable: 'IMAGE_DIGEST',
    computeType: undefined,
    buildImage: undefined,
    environmentType: undefined,
    buildTimeout: undefined,
    queuedTimeout: undefined,
    buildkit: {
      builder: 'containerd-store',
      buildkitImage: undefined,
      binfmtImage: undefined,
      cacheRef: '000000000000.dkr.ecr.us-east-1.amazonaws.com/group/app:buildcache',
      attestations: true,
      sbom: false,
      secretsAs: 'secret',
    },
    skipUnchanged: false,
    localLayerCache: false,
    fleetArn: undefined,
    checkoutDir: '/builds/group/app',
    reportDir: '/builds/group/app/.codebuild-image',
    dotenvPrefix: '',
    gitlab: {
      serverUrl: 'https://gitlab.example.com',
      apiUrl: 'https://gitlab.example.com/api/v4',
      projectPath: 'group/app',
      pipelineId: '1001',
      pipelineUrl: 'https://gitlab.example.com/group/app/-/pipelines/1001',
      jobId: '2002',
      jobUrl: 'https://gitlab.example.com/group/app/-/jobs/2002',
      jobName: 'build-image',
      commitSha: '0123456789abcdef0123456789abcdef01234567',
      ref: 'main',
      jobToken: undefined,
    },
    ...overrides,
  };
}
