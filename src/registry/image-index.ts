/**
 * The image index of a multi-platform image, made by the job over the registry's API once every platform's
 * build has pushed its image: no further CodeBuild build (and its provisioning minute) is needed. The job signs
 * in to the registry as src/registry/signin.ts says.
 */
import { OCI_INDEX, type PlatformImage, pushIndex } from './distribution';
import { registryClient, type SignInClients } from './signin';
import type { Settings } from '../inputs/settings';

/** Puts the index over `images` under every tag; returns its digest and media type. */
export async function pushImageIndex(s: Settings, images: PlatformImage[], tags: string[], clients: SignInClients): Promise<{ digest: string; mediaType: string }> {
  const digest = await pushIndex(registryClient(s, clients), s.image.path, images, tags);
  return { digest, mediaType: OCI_INDEX };
}
