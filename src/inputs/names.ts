// The template's input names, the CODEBUILD_IMAGE_* variables they arrive as, and the rule for variable names
// (id_token_variable, digest_variable, build arg names).

/**
 * Template input names; input `foo_bar` arrives as `CODEBUILD_IMAGE_FOO_BAR`.
 * Adding an input: name it here, give Settings (settings.ts) a documented field, and fill that field in
 * collectSettings (read-settings.ts) with a reader (problems.ts's readPattern, readChoice, readInteger and
 * readList cover most inputs).
 */
export const Inputs = {
  AwsRegion: 'aws_region',
  RoleArn: 'role_arn',
  IdTokenVariable: 'id_token_variable',
  OidcAudience: 'oidc_audience',
  SessionDuration: 'session_duration',
  ProjectName: 'project_name',
  S3Bucket: 's3_bucket',
  S3Prefix: 's3_prefix',
  Context: 'context',
  Dockerfile: 'dockerfile',
  Target: 'target',
  Platform: 'platform',
  BuildArgs: 'build_args',
  SecretBuildArgs: 'secret_build_args',
  Image: 'image',
  Tags: 'tags',
  ComputeType: 'compute_type',
  BuildImage: 'build_image',
  EnvironmentType: 'environment_type',
  BuildTimeout: 'build_timeout',
  QueuedTimeout: 'queued_timeout',
  Buildspec: 'buildspec',
  DigestVariable: 'digest_variable',
  DotenvPrefix: 'dotenv_prefix',
  ReportDir: 'report_dir',
  Builder: 'builder',
  BuildkitImage: 'buildkit_image',
  Cache: 'cache',
  CacheRef: 'cache_ref',
  Attestations: 'attestations',
  Sbom: 'sbom',
  SecretBuildArgsAs: 'secret_build_args_as',
  LocalLayerCache: 'local_layer_cache',
  FleetArn: 'fleet_arn',
  Platforms: 'platforms',
  PlatformProjects: 'platform_projects',
  Emulation: 'emulation',
  BinfmtImage: 'binfmt_image',
  SkipUnchanged: 'skip_unchanged',
  RegistryCredentials: 'registry_credentials',
  EcrRegistries: 'ecr_registries',
  SignWith: 'sign_with',
} as const;
export type InputName = (typeof Inputs)[keyof typeof Inputs];

export function envVarName(input: InputName): string {
  return `CODEBUILD_IMAGE_${input.toUpperCase()}`;
}

export const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
