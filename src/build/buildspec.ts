import { BUILD_SCRIPT, LOAD_EXPORTS } from './build-script';
import type { Settings } from '../inputs/settings';
import { yaml } from '../shared/yaml';

/**
 * Environment variables the generated buildspec reads. `startBuildInput` (src/build/codebuild.ts) sets them
 * through environmentVariablesOverride, so no user value is ever written into the buildspec text.
 */
export const BuildEnv = {
  /** Repository without tag, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/app`. */
  image: 'CBI_IMAGE',
  /** Registry host of the image, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com`. */
  registry: 'CBI_REGISTRY',
  /** ECR registries the build role logs in to, each `<region>=<host>`, separated by single spaces; optional. */
  ecrRegistries: 'CBI_ECR_REGISTRIES',
  /** Registries logged in to with credentials by reference, separated by single spaces; optional. */
  loginRegistries: 'CBI_LOGIN_REGISTRIES',
  /** The registry of CBI_LOGIN_REGISTRIES logged in to with the job's CI_JOB_TOKEN (GitLab's), for its messages; optional. */
  jobTokenRegistry: 'CBI_JOB_TOKEN_REGISTRY',
  /**
   * For the i-th (from 0) of CBI_LOGIN_REGISTRIES: CBI_LOGIN_USER_<i> and CBI_LOGIN_PASSWORD_<i> (a Secrets Manager
   * secret's json keys), or CBI_LOGIN_CREDENTIAL_<i> (a parameter, `username:password` or that JSON).
   */
  loginUserPrefix: 'CBI_LOGIN_USER_',
  loginPasswordPrefix: 'CBI_LOGIN_PASSWORD_',
  loginCredentialPrefix: 'CBI_LOGIN_CREDENTIAL_',
  /** Tags separated by single spaces (tags cannot contain spaces). */
  tags: 'CBI_TAGS',
  /** Dockerfile path relative to the context (the source root). */
  dockerfile: 'CBI_DOCKERFILE',
  /** Optional. */
  target: 'CBI_TARGET',
  /** Optional. */
  platform: 'CBI_PLATFORM',
  /** Names of the build args passed as `--build-arg`, separated by single spaces; optional. */
  buildArgNames: 'CBI_BUILD_ARG_NAMES',
  /** Names of the secret build args passed as BuildKit secrets (`--secret id=NAME`); optional. */
  secretNames: 'CBI_SECRET_NAMES',
  /** Each build arg's value (or secret) is in CBI_ARG_<NAME>. */
  buildArgPrefix: 'CBI_ARG_',
  /** Name of the exported variable carrying the digest. */
  digestVariable: 'CBI_DIGEST_VARIABLE',
  /** `containerd-store`, `docker-container` or `docker` (see src/build/build-script.ts). */
  builder: 'CBI_BUILDER',
  /** BuildKit image of the docker-container builder. */
  buildkitImage: 'CBI_BUILDKIT_IMAGE',
  /** Registry cache reference; unset means no cache. */
  cacheRef: 'CBI_CACHE_REF',
  /** `true` attaches SLSA provenance (mode=max). */
  attestations: 'CBI_ATTESTATIONS',
  /** `true` also attaches an SBOM. */
  sbom: 'CBI_SBOM',
  /** `true`: every platform of CBI_PLATFORM in this one build, through QEMU. */
  emulation: 'CBI_EMULATION',
  /** Installs QEMU's binfmt handlers where the host has none (emulation). */
  binfmtImage: 'CBI_BINFMT_IMAGE',
  /** The build script itself, in the buildspec's env.variables. */
  script: 'CBI_SH',
} as const;

/** Exported variable carrying `<repository>@<digest>`. */
export const IMAGE_REF_VARIABLE = 'IMAGE_REF';
/** Exported variable carrying the pushed descriptor's media type (an image index or a single manifest). */
export const MEDIA_TYPE_VARIABLE = 'IMAGE_MEDIA_TYPE';

/** The buildspec (YAML, version 0.2) that builds, tags and pushes the image and exports its digest. */
export function generateBuildspec(s: Settings): string {
  const exported = [...new Set([s.digestVariable, IMAGE_REF_VARIABLE, MEDIA_TYPE_VARIABLE])];
  const doc = {
    version: 0.2,
    env: { shell: 'bash', variables: { [BuildEnv.script]: BUILD_SCRIPT }, 'exported-variables': exported },
    phases: {
      pre_build: { commands: [`bash -c "$${BuildEnv.script}" prepare`] },
      build: { commands: [`bash -c "$${BuildEnv.script}" build`, LOAD_EXPORTS] },
    },
  };
  return yaml().stringify(doc, { lineWidth: 0 });
}

/** The buildspec to send: the user's file, read and checked by readSettings, or a generated one. */
export function resolveBuildspec(s: Settings): string {
  return s.buildspecText ?? generateBuildspec(s);
}
