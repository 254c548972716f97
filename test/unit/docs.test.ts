import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { absoluteLinks, changelogSection } from '../../scripts/changelog-section.mjs';
import { repoRoot } from '../helpers/gitlab-ci-local';
import { brokenLinks, docsPages, linksOf, readRepo, repoFile } from '../helpers/markdown';

/** Every Markdown file of the repository (README.md, docs/, CHANGELOG.md, the stages' READMEs…): their relative links must hold. */
const markdownFiles = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '*.md'], { cwd: repoRoot, encoding: 'utf8' }).split('\n').filter(Boolean);

describe('relative links', () => {
  it.each(markdownFiles)('in %s point to files and headings that exist', (file) => {
    expect(brokenLinks(file, readRepo(file), repoFile)).toEqual([]);
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
  const readme = readRepo('README.md');

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
});

describe('CHANGELOG.md and the version', () => {
  const changelog = readRepo('CHANGELOG.md');
  const pkg = JSON.parse(readRepo('package.json')) as { version: string };
  const lock = JSON.parse(readRepo('package-lock.json')) as { version: string; packages: Record<string, { version?: string }> };
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
      [...readRepo(f).matchAll(/codebuild-image\/build@([^\s"']+)/g)].map((m) => `${f}: ${m[1]}`),
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
