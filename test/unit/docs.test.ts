import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { absoluteLinks, changelogSection } from '../../scripts/changelog-section.mjs';
import { repoRoot } from '../helpers/gitlab-ci-local';

const read = (path: string) => readFileSync(join(repoRoot, path), 'utf8');
const docsPages = readdirSync(join(repoRoot, 'docs')).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`);
/** Every Markdown file of the repository (README.md, docs/, CHANGELOG.md, the stages' READMEs…): their relative links must hold. */
const markdownFiles = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.md'], { cwd: repoRoot, encoding: 'utf8' }).split('\n').filter(Boolean);

/** The text without fenced code blocks and inline code spans, which hold no links. */
function prose(text: string): string {
  return text
    .replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, '')
    .replace(/(`+)[\s\S]*?\1/g, '');
}

/** GitLab's heading anchor: lower case, punctuation except - and _ dropped, spaces → -, runs of - → one. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-')
    .replace(/-{2,}/g, '-');
}

/** The anchors of a Markdown text's headings; a repeated heading gets -1, -2… as on GitLab. */
export function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const withoutFences = text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, '');
  for (const m of withoutFences.matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const base = anchorOf(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** `[text](target)` links and `[label]: target` definitions outside code, as written. */
export function linksOf(text: string): string[] {
  const body = prose(text);
  const inline = [...body.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
  const defined = [...body.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)].map((m) => m[1]!);
  return [...inline, ...defined];
}

/**
 * The broken relative links of `file` (a path in the repository) whose text is `text`: a target that
 * does not exist, or an anchor that names no heading of the .md file it points to.
 */
export function brokenLinks(file: string, text: string, readFile: (path: string) => string | undefined): string[] {
  const broken: string[] = [];
  for (const link of linksOf(text)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(link) || link.startsWith('//')) continue; // https:, mailto:…
    const hash = link.indexOf('#');
    const target = decodeURIComponent(hash < 0 ? link : link.slice(0, hash));
    const anchor = hash < 0 ? undefined : link.slice(hash + 1);
    const path = target === '' ? file : normalize(join(dirname(file), target)).replace(/\/$/, '');
    if (path.startsWith('..')) {
      broken.push(`${link} (leaves the repository)`);
      continue;
    }
    const content = readFile(path);
    if (content === undefined) {
      broken.push(`${link} (no file ${path})`);
      continue;
    }
    if (anchor !== undefined && path.endsWith('.md') && !anchorsOf(content).has(anchor)) {
      broken.push(`${link} (no heading #${anchor} in ${path})`);
    }
  }
  return broken;
}

/** File text for .md files, '' for other files and directories that exist, undefined otherwise. */
function repoFile(path: string): string | undefined {
  const full = join(repoRoot, path);
  if (!existsSync(full)) return undefined;
  return statSync(full).isFile() && path.endsWith('.md') ? readFileSync(full, 'utf8') : '';
}

describe('relative links', () => {
  it.each(markdownFiles)('in %s point to files and headings that exist', (file) => {
    expect(brokenLinks(file, read(file), repoFile)).toEqual([]);
  });

  it('are found and judged as GitLab would', () => {
    const files: Record<string, string> = {
      'docs/a.md': '# Page A\n\n## Which pipelines may build: protected branches and tags\n\n## The fake AWS (`stack/fake-aws/`)\n\n## Notes\n\n## Notes\n',
      'README.md': '# Title\n',
    };
    const readFile = (p: string) => files[p];
    const text = [
      '[ok](docs/a.md) [ok](docs/a.md#which-pipelines-may-build-protected-branches-and-tags)',
      '[ok](docs/a.md#the-fake-aws-stackfake-aws) [ok](docs/a.md#notes-1) [ok](#title) [ok](https://example.com/x#y)',
      '[gone](docs/b.md) [no heading](docs/a.md#aws-setup) [no heading](#nothing)',
      '`[code](nowhere.md)`',
      '```md\n[fenced](nowhere.md)\n```',
      '[ref]: docs/missing.md',
    ].join('\n');
    expect(brokenLinks('README.md', text, readFile)).toEqual([
      'docs/b.md (no file docs/b.md)',
      'docs/a.md#aws-setup (no heading #aws-setup in docs/a.md)',
      '#nothing (no heading #nothing in README.md)',
      'docs/missing.md (no file docs/missing.md)',
    ]);
    expect(brokenLinks('docs/a.md', '[up](../README.md#title) [up](../../x.md)', readFile)).toEqual(['../../x.md (leaves the repository)']);
  });
});

describe('README and docs/', () => {
  const readme = read('README.md');

  it('keep the README a catalog page of at most about 400 lines', () => {
    expect(readme.split('\n').length).toBeLessThanOrEqual(400);
    for (const heading of ['## Quick start on a fresh machine', '## Inputs', '## Outputs', '## Exit codes']) {
      expect(readme).toContain(`\n${heading}\n`);
    }
  });

  it('reach every docs/ page from the README', () => {
    const linked = new Set(linksOf(readme).map((l) => l.split('#')[0]));
    for (const page of docsPages) expect(linked, page).toContain(page);
  });

  it('keep the deploy commands where infra/template.test.ts checks them', () => {
    expect(read('docs/aws-setup.md')).toContain('aws cloudformation deploy \\\n');
  });
});

describe('CHANGELOG.md and the version', () => {
  const changelog = read('CHANGELOG.md');
  const pkg = JSON.parse(read('package.json')) as { version: string };
  const lock = JSON.parse(read('package-lock.json')) as { version: string; packages: Record<string, { version?: string }> };
  const major = pkg.version.split('.')[0]!;

  it("has a section for package.json's version", () => {
    expect(pkg.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(changelog).toMatch(new RegExp(`^## \\[${pkg.version.replace(/\./g, '\\.')}\\] - \\d{4}-\\d{2}-\\d{2}$`, 'm'));
    expect(changelogSection(changelog, pkg.version)?.length).toBeGreaterThan(100);
  });

  it('has the keep-a-changelog shape, with a link for every version', () => {
    expect(changelog.startsWith('# Changelog\n')).toBe(true);
    expect(changelog).toContain('\n## [Unreleased]\n');
    const versions = [...changelog.matchAll(/^## \[(\d+\.\d+\.\d+)\] - (\d{4}-\d{2}-\d{2})$/gm)].map((m) => m[1]!);
    expect(versions.length).toBeGreaterThanOrEqual(2);
    expect(versions[0], 'the newest version comes first').toBe(pkg.version);
    for (const v of ['Unreleased', ...versions]) {
      expect(changelog).toMatch(new RegExp(`^\\[${v.replace(/\./g, '\\.')}\\]: https://gitlab\\.com/components/codebuild-image/-/`, 'm'));
    }
    for (const v of versions) {
      for (const sub of changelogSection(changelog, v)!.matchAll(/^### (.+)$/gm)) {
        expect(['Added', 'Changed', 'Deprecated', 'Removed', 'Fixed', 'Security', 'Migrating from 1.x'], `${v}: ${sub[1]}`).toContain(sub[1]);
      }
    }
  });

  it('tells a 1.x user how to keep secret build args working', () => {
    const section = changelogSection(changelog, '2.0.0')!;
    expect(section).toContain('### Migrating from 1.x');
    expect(section).toContain('RUN --mount=type=secret,id=NPM_TOKEN,env=NPM_TOKEN');
    expect(section).toContain('secret_build_args_as: build-arg');
  });

  it("uses package.json's version in package-lock.json and its major in every include", () => {
    expect(lock.version).toBe(pkg.version);
    expect(lock.packages['']?.version).toBe(pkg.version);
    const includes = ['README.md', ...docsPages, 'catalog-resource.yml'].flatMap((f) =>
      [...read(f).matchAll(/codebuild-image\/build@([^\s"']+)/g)].map((m) => `${f}: ${m[1]}`),
    );
    expect(includes.length).toBeGreaterThanOrEqual(5);
    for (const inc of includes) expect(inc.split(': ')[1]!.split('.')[0], inc).toBe(major);
  });

  it('gives the release job the section, with links into the tagged repository', () => {
    const run = (...args: string[]) => execFileSync('node', [join(repoRoot, 'scripts/changelog-section.mjs'), ...args], { encoding: 'utf8' });
    const notes = run('--tag', pkg.version);
    expect(notes.trim()).toBe(absoluteLinks(changelogSection(changelog, pkg.version)!, 'gitlab.com/components/codebuild-image', pkg.version));
    expect(notes).not.toMatch(/\]\((?!https?:)/);
    expect(notes).toContain(`](https://gitlab.com/components/codebuild-image/-/blob/${pkg.version}/docs/`);
    expect(notes).not.toContain('## [');
  });

  it('refuses, in one line, a version without a section and a tag that is not the version', () => {
    const fails = (...args: string[]) => {
      try {
        execFileSync('node', [join(repoRoot, 'scripts/changelog-section.mjs'), ...args], { encoding: 'utf8', stdio: 'pipe' });
      } catch (e) {
        const err = e as { status: number; stderr: string };
        return { status: err.status, stderr: err.stderr };
      }
      throw new Error(`changelog-section.mjs ${args.join(' ')} succeeded`);
    };
    const missing = fails('99.0.0');
    expect(missing.status).toBe(1);
    expect(missing.stderr).toBe('changelog-section: CHANGELOG.md has no "## [99.0.0] - <date>" section: add one before releasing 99.0.0\n');
    const wrongTag = fails('--tag', '99.0.0');
    expect(wrongTag.stderr).toMatch(new RegExp(`^changelog-section: tag 99\\.0\\.0 is not package\\.json's version ${pkg.version.replace(/\./g, '\\.')}: .+\\n$`));
    expect(changelogSection('# Changelog\n\n## [1.0.0] - 2026-01-01\n\n### Added\n\n- x\n\n[1.0.0]: https://x\n', '1.0.0')).toBe('### Added\n\n- x');
    expect(changelogSection('## [1.0.10] - 2026-01-01\n\nten\n', '1.0.1')).toBeUndefined();
  });
});
