/**
 * The image index of a multi-platform image, made by the job over the registry's API once every platform's
 * build has pushed its image: no further CodeBuild build (and its provisioning minute) is needed. The same
 * signed-in client retags an unchanged image (src/unchanged.ts). ECR
 * registries are signed in to with the CI role (`ecr:GetAuthorizationToken`); others are spoken to anonymously.
 */
import { type ECRClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr';
import { awsStep } from './errors';
import { OCI_INDEX, type PlatformImage, pushIndex, RegistryClient, type RegistryCredentials } from './registry';
import type { ImageRepository } from './settings';

/** Puts the index over `images` under every tag; returns its digest and media type. */
export async function pushImageIndex(
  image: ImageRepository,
  images: PlatformImage[],
  tags: string[],
  ecr: (region: string) => ECRClient,
): Promise<{ digest: string; mediaType: string }> {
  const digest = await pushIndex(registryClient(image, ecr), image.path, images, tags);
  return { digest, mediaType: OCI_INDEX };
}

/** The registry API of the image's registry, signed in to as the job can (see registryCredentials). */
export function registryClient(image: ImageRepository, ecr: (region: string) => ECRClient): RegistryClient {
  return new RegistryClient(image.registry, { credentials: () => registryCredentials(image, ecr) });
}

async function registryCredentials(image: ImageRepository, ecrIn: (region: string) => ECRClient): Promise<RegistryCredentials | undefined> {
  if (!image.ecr) return undefined;
  const ecr = ecrIn(image.ecr.region);
  try {
    const res = await awsStep(
      `Signing in to ${image.registry} to make the image index`,
      () => ecr.send(new GetAuthorizationTokenCommand({})),
      () => 'The CI role needs ecr:GetAuthorizationToken, and ecr:BatchGetImage, ecr:GetDownloadUrlForLayer and ecr:PutImage on the repository.',
    );
    const token = res.authorizationData?.[0]?.authorizationToken ?? '';
    const [username = '', password = ''] = Buffer.from(token, 'base64').toString('utf8').split(':', 2);
    return { username, password };
  } finally {
    ecr.destroy();
  }
}
