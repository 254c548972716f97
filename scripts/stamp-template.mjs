#!/usr/bin/env node
// Pins templates/build.yml to the built program: writes sha256(dist/index.js) and the component
// project's path (from catalog-resource.yml) into the job script.
// Usage: node scripts/stamp-template.mjs [--check]   (--check: exit 1 when the template is stale)
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const templateFile = join(root, 'templates/build.yml');
const distFile = join(root, 'dist/index.js');

/** `gitlab.com/group/sub/project` → `group%2Fsub%2Fproject`, the API's form of a project id. */
export function encodedProjectPath(catalogProject) {
  const path = catalogProject.split('/').slice(1).join('/');
  if (!path) throw new Error(`catalog-resource.yml: project "${catalogProject}" must look like host/group/project`);
  return encodeURIComponent(path);
}

export function stamp(template, sha256, project) {
  const next = template
    .replace(/^(\s*cbi_sha256=)\S*$/m, `$1${sha256}`)
    .replace(/^(\s*cbi_project=)\S*$/m, `$1${project}`);
  if (!/cbi_sha256=/.test(next) || !/cbi_project=/.test(next)) {
    throw new Error('templates/build.yml lost its cbi_sha256= or cbi_project= line: restore it');
  }
  return next;
}

function main() {
  const check = process.argv.includes('--check');
  if (!existsSync(distFile)) {
    console.error('dist/index.js does not exist: run `npm run build` first');
    process.exit(1);
  }
  const sha256 = createHash('sha256').update(readFileSync(distFile)).digest('hex');
  const catalog = parse(readFileSync(join(root, 'catalog-resource.yml'), 'utf8'));
  const template = readFileSync(templateFile, 'utf8');
  const next = stamp(template, sha256, encodedProjectPath(String(catalog.project)));
  if (check) {
    if (next !== template) {
      console.error('templates/build.yml does not pin the current dist/index.js: run `node scripts/stamp-template.mjs`');
      process.exit(1);
    }
    console.log(`templates/build.yml pins dist/index.js sha256 ${sha256}`);
    return;
  }
  if (next !== template) writeFileSync(templateFile, next);
  console.log(`templates/build.yml: dist/index.js sha256 ${sha256}`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
