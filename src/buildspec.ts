import { readFileSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { InputError } from './errors';
import { BUILD_SCRIPT, LOAD_EXPORTS } from './build-script';
import type { Settings } from './settings';

/**
 * Environment variables the generated buildspec reads. `startBuildInput` (src/codebuild.ts) sets them
 * through environmentVariablesOverride, so no user value is ever written into the buildspec text.
 */
export const BuildEnv = {
  /** Repository without tag, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/app`. */
  image: 'CBI_IMAGE',
  /** Registry host of the image, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com`. */
  registry: 'CBI_REGISTRY',
  /** Region of the ECR registry; set only when the image is in ECR. */
  ecrRegion: 'CBI_ECR_REGION',
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
  /** `containerd-store`, `docker-container` or `docker` (see src/build-script.ts). */
  builder: 'CBI_BUILDER',
  /** BuildKit image of the docker-container builder. */
  buildkitImage: 'CBI_BUILDKIT_IMAGE',
  /** Registry cache reference; unset means no cache. */
  cacheRef: 'CBI_CACHE_REF',
  /** `true` attaches SLSA provenance (mode=max). */
  attestations: 'CBI_ATTESTATIONS',
  /** `true` also attaches an SBOM. */
  sbom: 'CBI_SBOM',
  /** The build script itself, in the buildspec's env.variables. */
  script: 'CBI_SH',
} as const;

/** Exported variable carrying `<repository>@<digest>`. */
export const IMAGE_REF_VARIABLE = 'IMAGE_REF';
/** Exported variable carrying the pushed descriptor's media type (an image index or a single manifest). */
export const MEDIA_TYPE_VARIABLE = 'IMAGE_MEDIA_TYPE';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The buildspec (YAML, version 0.2) that builds, tags and pushes the image and exports its digest. */
export function generateBuildspec(s: Settings): string {
  if (!NAME.test(s.digestVariable)) {
    throw new InputError([{ input: 'digest_variable', message: `"${s.digestVariable}" is not a variable name` }]);
  }
  const exported = [...new Set([s.digestVariable, IMAGE_REF_VARIABLE, MEDIA_TYPE_VARIABLE])];
  const doc = {
    version: 0.2,
    env: { shell: 'bash', variables: { [BuildEnv.script]: BUILD_SCRIPT }, 'exported-variables': exported },
    phases: {
      pre_build: { commands: [`bash -c "$${BuildEnv.script}" prepare`] },
      build: { commands: [`bash -c "$${BuildEnv.script}" build`, LOAD_EXPORTS] },
    },
  };
  return stringify(doc, { lineWidth: 0 });
}

/**
 * The buildspec to send: the user's file (path relative to the checkout root) or a generated one.
 * The user's file is only checked to be a YAML buildspec; its content is theirs.
 */
export function resolveBuildspec(s: Settings, checkoutDir: string): string {
  if (s.buildspec === undefined) return generateBuildspec(s);
  const file = resolve(checkoutDir, s.buildspec);
  const rel = relative(checkoutDir, file);
  const problem = (message: string) => new InputError([{ input: 'buildspec', message }]);
  if (rel.startsWith('..') || isAbsolute(rel)) throw problem(`${s.buildspec} is outside the checkout`);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw problem(`cannot read ${s.buildspec}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw problem(`${s.buildspec} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (typeof doc !== 'object' || doc === null || !('version' in doc) || !('phases' in doc)) {
    throw problem(`${s.buildspec} is not a CodeBuild buildspec (it needs "version" and "phases")`);
  }
  return text;
}
