/**
 * Docker's naming rules: image references (github.com/distribution/reference, regexp.go), tags,
 * platforms and Dockerfile stage names.
 */
import type { ImageRepository } from './settings';
import { shown } from '../shared/shown';

export const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
export const PLATFORM = /^[a-z0-9]+\/[a-z0-9_]+(?:\/[a-z0-9]+)?$/;
export const STAGE_NAME = /^[A-Za-z][A-Za-z0-9_.-]*$/;

const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const REGISTRY = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?$`);
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const ECR_REGISTRY =
  /^(\d{12})\.(?:dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?|dkr-ecr(?:-fips)?\.([a-z0-9-]+)\.on\.aws)$/;

/** A registry host (with optional :port), and its ECR account and region when it is a private ECR registry. */
export function parseRegistry(host: string): { registry: string; ecr?: { account: string; region: string } } | undefined {
  if (!REGISTRY.test(host)) return undefined;
  const ecr = ECR_REGISTRY.exec(host);
  return ecr ? { registry: host, ecr: { account: ecr[1] ?? '', region: ecr[2] ?? ecr[3] ?? '' } } : { registry: host };
}

/** Parses a repository reference without tag or digest; returns a problem text when invalid. */
export function parseImageRepository(ref: string): ImageRepository | { problem: string } {
  if (ref.includes('@')) return { problem: 'includes a digest; give the repository only (the digest is reported after the push)' };
  const parts = ref.split('/');
  if (parts.at(-1)?.includes(':') && parts.length > 1) return { problem: 'includes a tag; give the repository only and list tags in `tags`' };
  const first = parts[0] ?? '';
  const hasRegistry = parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase());
  if (!hasRegistry && ref.includes(':')) return { problem: 'includes a tag; give the repository only and list tags in `tags`' };
  const registry = parseRegistry(hasRegistry ? first : 'docker.io');
  const pathParts = hasRegistry ? parts.slice(1) : parts.length === 1 ? ['library', first] : parts;
  if (!registry) return { problem: `registry ${shown(first)} is not a host name with optional :port` };
  const badPart = pathParts.find((c) => !PATH_COMPONENT.test(c));
  if (badPart !== undefined) {
    const lower = badPart !== badPart.toLowerCase() ? ' (repository names must be lower case)' : '';
    return { problem: `path component ${shown(badPart)} is not valid: use lower-case letters and digits separated by . _ __ or -${lower}` };
  }
  const name = `${registry.registry}/${pathParts.join('/')}`;
  if (name.length > 255) return { problem: 'is longer than 255 characters' };
  return { ...registry, path: pathParts.join('/'), name };
}

/** `<repository>:<tag>` with the repository as parseImageRepository accepts it (a cache or BuildKit image). */
export function parseImageReference(ref: string): ImageRepository | { problem: string } {
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  if (colon <= slash) return { problem: 'has no tag' };
  if (!TAG.test(ref.slice(colon + 1))) return { problem: 'has an invalid tag' };
  return parseImageRepository(ref.slice(0, colon));
}
