// BuildKit settings: builder, buildkit_image, cache, cache_ref, attestations, sbom, secret_build_args_as and
// binfmt_image.
import { parseImageReference } from './docker-reference';
import { type InputName, Inputs } from './names';
import { type Problems, readBoolean, readChoice } from './problems';
import type { Builder, BuildKitSettings, ImageRepository } from './settings';
import { shown } from '../shared/shown';

export const BUILDERS = ['containerd-store', 'docker-container', 'docker'] as const;

export function readBuildKit(p: Problems, get: (input: InputName) => string, image: ImageRepository, emulation: boolean): BuildKitSettings {
  const builder = (readChoice(p, Inputs.Builder, get(Inputs.Builder), [...BUILDERS], 'leave it empty for containerd-store') ?? 'containerd-store') as Builder;
  const buildkitImage = get(Inputs.BuildkitImage) || undefined;
  if (buildkitImage && 'problem' in parseImageReference(buildkitImage)) {
    p.add(Inputs.BuildkitImage, `${shown(buildkitImage)} is not an image reference such as <registry>/moby/buildkit:v0.26.2`);
  }
  if (builder === 'docker-container' && !buildkitImage) {
    p.add(Inputs.BuildkitImage, 'is required with builder docker-container: name a moby/buildkit image your builds can pull without Docker Hub\'s anonymous limit, e.g. through an ECR pull-through cache (<account>.dkr.ecr.<region>.amazonaws.com/docker-hub/moby/buildkit:v0.26.2)');
  }
  const cache = readBoolean(p, Inputs.Cache, get(Inputs.Cache), true);
  let cacheRef: string | undefined;
  if (cache) {
    const given = get(Inputs.CacheRef);
    cacheRef = given || (image.name ? `${image.name}:buildcache` : undefined);
    if (given && 'problem' in parseImageReference(given)) {
      p.add(Inputs.CacheRef, `${shown(given)} is not an image reference with a tag, e.g. ${image.name || '<registry>/<repository>'}:buildcache`);
    }
  }
  const secretsAs = readChoice(p, Inputs.SecretBuildArgsAs, get(Inputs.SecretBuildArgsAs), ['secret', 'build-arg'], 'leave it empty for secret') ?? 'secret';
  const binfmtImage = get(Inputs.BinfmtImage) || undefined;
  if (binfmtImage && 'problem' in parseImageReference(binfmtImage)) {
    p.add(Inputs.BinfmtImage, `${shown(binfmtImage)} is not an image reference such as <registry>/tonistiigi/binfmt:qemu-v9.2.2`);
  }
  return {
    builder,
    buildkitImage,
    binfmtImage: emulation ? binfmtImage : undefined,
    cacheRef,
    attestations: readBoolean(p, Inputs.Attestations, get(Inputs.Attestations), true),
    sbom: readBoolean(p, Inputs.Sbom, get(Inputs.Sbom), false),
    secretsAs: secretsAs as BuildKitSettings['secretsAs'],
  };
}
