// The image pushed to and its tags: image (by default the ECR repository named for the project) and tags.
import { ecrRegistry } from './aws-names';
import { parseImageRepository, TAG } from './docker-reference';
import { JobLimits } from './limits';
import { Inputs } from './names';
import { type Problems, readList } from './problems';
import type { ImageRepository } from './settings';
import { shown } from '../shared/shown';

export function readImage(p: Problems, given: string, account: string | null | undefined, region: string, projectPath: string | undefined): ImageRepository {
  const placeholder: ImageRepository = { registry: '', path: '', name: '' };
  let ref = given;
  if (!ref && account === null) return placeholder;
  if (!ref) {
    if (!account || !region || !projectPath) {
      p.add(Inputs.Image, 'is required when role_arn or CI_PROJECT_PATH is missing (the default <account>.dkr.ecr.<region>.amazonaws.com/<project path> comes from them)');
      return placeholder;
    }
    ref = `${ecrRegistry(account, region)}/${projectPath.toLowerCase()}`;
  }
  const r = parseImageRepository(ref);
  if ('problem' in r) {
    p.add(Inputs.Image, given ? `${shown(ref)} ${r.problem}` : `the default image ${shown(ref)} ${r.problem}; set image explicitly`);
    return placeholder;
  }
  return r;
}

export function readTags(p: Problems, raw: string, shortSha: string | undefined): string[] {
  const listed = readList(p, Inputs.Tags, raw);
  if (!listed) return [];
  const tags = listed.length > 0 ? listed : shortSha ? [shortSha] : [];
  if (tags.length === 0) p.add(Inputs.Tags, 'needs at least one tag, e.g. ["$CI_COMMIT_SHORT_SHA"]');
  for (const tag of tags) {
    if (TAG.test(tag)) continue;
    const hint = tag.includes('$') ? ' (a CI/CD variable was not expanded; check its name)' : '';
    p.add(Inputs.Tags, `${shown(tag)} is not a Docker tag: 1–128 of letters, digits, _ . -, not starting with . or -${hint}`);
  }
  const unique = [...new Set(tags)];
  if (unique.length > JobLimits.tags) {
    p.add(Inputs.Tags, `lists ${unique.length} tags; the job pushes at most ${JobLimits.tags} (they travel together in one CodeBuild variable): push the others from a later job, e.g. with docker buildx imagetools create`);
  }
  return unique;
}
