import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { encodedProjectPath } from '../../scripts/stamp-template.mjs';
import { gitlabCiLocal, makeComponentRepo, repoRoot } from '../helpers/gitlab-ci-local';
import { brokenLinks, docsPages, readRepo, repoFile } from '../helpers/markdown';

interface InputSpec {
  type?: string;
  default?: unknown;
  options?: unknown[];
  regex?: string;
}
interface Catalog {
  name: string;
  description: string;
  project: string;
  topics: string[];
  minimum_gitlab_version: string;
  components: { name: string; file: string; purpose: string }[];
  links: Record<string, string>;
}

const catalog = parse(readRepo('catalog-resource.yml')) as Catalog;
const readme = readRepo('README.md');
/** README.md and the pages beside it: where the examples live. */
const docs = [readme, ...docsPages.map(readRepo)];

function specOf(file: string): Record<string, InputSpec> {
  const [header] = parseAllDocuments(readRepo(file)).map((d) => d.toJS());
  return header.spec.inputs;
}

/** The README's inputs table: name → the Default cell as written. */
function readmeInputs(): Map<string, string> {
  const section = readme.slice(readme.indexOf('\n## Inputs\n'), readme.indexOf('\n## Outputs\n'));
  const rows = new Map<string, string>();
  for (const m of section.matchAll(/^\| `([a-z0-9_]+)` \| (.+?) \| .+ \|$/gm)) rows.set(m[1]!, m[2]!);
  return rows;
}

/** How the README writes a default: `value`, `""` for empty, JSON for arrays, *(required)* for none. */
function documented(spec: InputSpec): string {
  if (spec.default === undefined) return '*(required)*';
  if (spec.default === '') return '`""`';
  return `\`${typeof spec.default === 'string' ? spec.default : JSON.stringify(spec.default)}\``;
}

describe('catalog-resource.yml', () => {
  it('lists exactly the components under templates/, each with a one-line purpose', () => {
    const files = readdirSync(join(repoRoot, 'templates')).filter((f) => f.endsWith('.yml'));
    expect(catalog.components.map((c) => c.file).sort()).toEqual(files.map((f) => `templates/${f}`).sort());
    for (const c of catalog.components) {
      expect(c.file).toBe(`templates/${c.name}.yml`);
      expect(c.purpose.trim()).not.toContain('\n');
      expect(c.purpose.length).toBeGreaterThan(20);
    }
  });

  it('has a name, description, topics and a minimum GitLab version the README states', () => {
    expect(catalog.name).toBe('codebuild-image');
    expect(readme.startsWith(`# ${catalog.name}\n`)).toBe(true);
    expect(catalog.description.length).toBeGreaterThan(40);
    expect(catalog.topics.length).toBeGreaterThan(2);
    expect(catalog.minimum_gitlab_version).toMatch(/^\d+\.\d+$/);
    expect(readme).toContain(`GitLab ${catalog.minimum_gitlab_version} or later`);
  });

  it('names the project whose path the template downloads dist/index.js from', () => {
    expect(readRepo('templates/build.yml')).toContain(`cbi_project=${encodedProjectPath(catalog.project)}\n`);
    expect(() => encodedProjectPath('gitlab.com')).toThrow(/host\/group\/project/);
  });

  it('links to files and sections (of README.md or docs/) that exist', () => {
    // Its paths are relative to the repository root, as README.md's are; https: links are skipped.
    const text = Object.entries(catalog.links).map(([name, link]) => `[${name}](${link})`).join('\n');
    expect(brokenLinks('catalog-resource.yml', text, repoFile)).toEqual([]);
  });
});

describe('README', () => {
  it.each(catalogComponents())('documents component %s with every input and its default', (name, file) => {
    expect(readme).toMatch(new RegExp(`\\b${name}\\b`));
    const spec = specOf(file);
    const table = readmeInputs();
    expect([...table.keys()].sort(), 'README inputs table vs template inputs').toEqual(Object.keys(spec).sort());
    for (const [input, s] of Object.entries(spec)) expect(table.get(input), input).toBe(documented(s));
  });

  it('has examples (README.md and docs/) that use only real inputs, with valid values, and give every required one', () => {
    const spec = specOf('templates/build.yml');
    const required = Object.entries(spec).filter(([, s]) => s.default === undefined).map(([n]) => n);
    const blocks = docs.flatMap((text) => [...text.matchAll(/```yaml\n([\s\S]*?)```/g)]).map((m) => parse(m[1]!));
    const includes = blocks.flatMap((b) => (b?.include ?? []) as { component: string; inputs: Record<string, unknown> }[]);
    expect(includes.length).toBeGreaterThanOrEqual(5);
    for (const inc of includes) {
      expect(inc.component).toMatch(/^\$CI_SERVER_FQDN\/.+\/build@\d+\.\d+\.\d+$/);
      for (const name of required) expect(inc.inputs, name).toHaveProperty(name);
      for (const [name, value] of Object.entries(inc.inputs)) {
        const s = spec[name];
        expect(s, `README or docs/ example uses unknown input ${name}`).toBeDefined();
        if (s?.regex) expect(String(value), name).toMatch(new RegExp(s.regex));
        if (s?.options) expect(s.options, name).toContain(value);
        if (s?.type === 'array') expect(Array.isArray(value), name).toBe(true);
      }
    }
  });
});

function catalogComponents(): [string, string][] {
  return catalog.components.map((c) => [c.name, c.file]);
}

describe('.gitlab-ci.yml of this project (gitlab-ci-local)', () => {
  const jobs = async (variables: Record<string, string>) => {
    const repo = makeComponentRepo({ files: { '.gitlab-ci.yml': readRepo('.gitlab-ci.yml') } });
    try {
      const result = await gitlabCiLocal(repo.dir, ['--list-json'], { variables });
      expect(result.code, result.output).toBe(0);
      const json = result.output.slice(result.output.indexOf('\n[') + 1);
      // --list-json includes jobs that rules exclude, as when: never.
      return (JSON.parse(json) as { name: string; when: string }[]).filter((j) => j.when !== 'never').map((j) => j.name);
    } finally {
      repo.remove();
    }
  };
  const aws = {
    SELF_TEST_REGION: 'eu-west-1',
    SELF_TEST_ROLE_ARN: 'arn:aws:iam::123456789012:role/self-test',
    SELF_TEST_PROJECT_NAME: 'codebuild-image',
  };

  it('checks, tests, and says why the self-test is skipped without AWS settings', async () => {
    const names = await jobs({});
    expect(names).toEqual(expect.arrayContaining(['lint', 'dist', 'unit', 'e2e', 'self-test-skipped']));
    expect(names).not.toContain('self-test');
    expect(names).not.toContain('release');
    expect(names).not.toContain('release-notes');
  });

  it('self-tests the component at this commit when AWS settings are present', async () => {
    const names = await jobs(aws);
    expect(names).toEqual(expect.arrayContaining(['self-test', 'self-test-verify']));
    expect(names).not.toContain('self-test-skipped');
  });

  it('releases to the catalog on semantic-version tags only', async () => {
    const onVersionTag = await jobs({ CI_COMMIT_TAG: '1.2.3' });
    expect(onVersionTag).toContain('release');
    expect(onVersionTag, 'release-notes makes the release-notes.md that release reads').toContain('release-notes');
    const onOtherTag = await jobs({ CI_COMMIT_TAG: 'nightly' });
    expect(onOtherTag).not.toContain('release');
    expect(onOtherTag).not.toContain('release-notes');
    const release = (parse(readRepo('.gitlab-ci.yml')) as { release: { release: { tag_name: string } } }).release;
    expect(release.release.tag_name).toBe('$CI_COMMIT_TAG');
  });
});
