#!/usr/bin/env node
// Prints one version's section of CHANGELOG.md (the lines under `## [x.y.z] - date`, up to the next
// version), for the release job's description. Relative links become links into the repository at
// that version's tag, so they work on the release page. Node built-ins only: the release job runs it
// without `npm ci`.
// Usage: node scripts/changelog-section.mjs <version>
//        node scripts/changelog-section.mjs --tag <tag>   (also: the tag must equal package.json's version)
// Exits 1 with one line on stderr when there is no such section (or the tag is not package.json's version).
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The body of `## [version]` in a keep-a-changelog text, trimmed; undefined when there is none. */
export function changelogSection(changelog, version) {
  const lines = changelog.split('\n');
  const heading = new RegExp(`^## \\[${version.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\](?:\\s|$)`);
  const start = lines.findIndex((l) => heading.test(l));
  if (start < 0) return undefined;
  const rest = lines.slice(start + 1);
  // The section ends at the next version's heading or at the link reference definitions at the bottom.
  const end = rest.findIndex((l) => /^## \[/.test(l) || /^\[[^\]]+\]: \S+/.test(l));
  const body = (end < 0 ? rest : rest.slice(0, end)).join('\n').trim();
  return body;
}

/** Relative links of the section as absolute links into `https://<project>/-/blob/<ref>/`. */
export function absoluteLinks(section, project, ref) {
  const base = `https://${project}/-/blob/${ref}/`;
  return section.replace(/\]\(([^)\s]+)\)/g, (whole, target) => {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) return whole;
    return `](${base}${target.startsWith('#') ? `CHANGELOG.md${target}` : target})`;
  });
}

function fail(message) {
  console.error(`changelog-section: ${message}`);
  process.exit(1);
}

function main() {
  const args = process.argv.slice(2);
  const tagged = args[0] === '--tag';
  const version = tagged ? args[1] : args[0];
  if (!version || args.length !== (tagged ? 2 : 1)) fail('usage: node scripts/changelog-section.mjs <version> | --tag <tag>');
  const packageVersion = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version;
  if (tagged && version !== packageVersion) {
    fail(`tag ${version} is not package.json's version ${packageVersion}: tag the commit whose package.json says ${version}`);
  }
  const section = changelogSection(readFileSync(join(root, 'CHANGELOG.md'), 'utf8'), version);
  if (section === undefined) fail(`CHANGELOG.md has no "## [${version}] - <date>" section: add one before releasing ${version}`);
  if (section === '') fail(`CHANGELOG.md's section for ${version} is empty: say what changed`);
  const project = /^project:\s*(\S+)\s*$/m.exec(readFileSync(join(root, 'catalog-resource.yml'), 'utf8'))?.[1];
  if (!project) fail('catalog-resource.yml has no project: line');
  process.stdout.write(`${absoluteLinks(section, project, version)}\n`);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
