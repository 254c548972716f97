import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { stamp } from '../../scripts/stamp-template.mjs';
import { gitlabCiLocal, makeComponentRepo, previewPipeline, repoRoot, runPipeline } from '../helpers/gitlab-ci-local';

interface InputSpec {
  type?: 'string' | 'number' | 'boolean' | 'array';
  description?: string;
  default?: unknown;
  options?: unknown[];
  regex?: string;
}
type Job = Record<string, unknown> & { variables: Record<string, string>; script: string[] };

const templateText = readFileSync(join(repoRoot, 'templates/build.yml'), 'utf8');
const [specDoc, jobDoc] = parseAllDocuments(templateText).map((d) => d.toJS());
const inputs = specDoc.spec.inputs as Record<string, InputSpec>;
/** Inputs only the template uses; every other input reaches the job as CODEBUILD_IMAGE_<NAME>. */
const templateOnly = ['stage', 'job_name', 'job_image'];

/** Creates a throw-away component repository with this consumer pipeline, returns gitlab-ci-local's verdict. */
async function list(ciYaml: string) {
  const repo = makeComponentRepo({ files: { '.gitlab-ci.yml': ciYaml } });
  try {
    return await gitlabCiLocal(repo.dir, ['--list']);
  } finally {
    repo.remove();
  }
}

function includeWith(inputsYaml: string): string {
  return `include:\n  - component: $CI_SERVER_FQDN/$CI_PROJECT_PATH/build@$CI_COMMIT_SHA\n    inputs:\n${inputsYaml
    .trim()
    .split('\n')
    .map((l) => `      ${l}`)
    .join('\n')}\n`;
}

/** A variable that carries a list input. */
const fromJson = (value: string | undefined): unknown => JSON.parse(value ?? 'null');

const required = 'aws_region: eu-west-1\nproject_name: codebuild-image';

describe('templates/build.yml spec', () => {
  it('is a component header and one job, with no global keywords', () => {
    expect(specDoc.spec.component).toEqual(['sha']);
    expect(Object.keys(jobDoc)).toEqual(['$[[ inputs.job_name ]]']);
  });

  it('describes every input, and gives numbers, booleans and arrays an explicit type', () => {
    for (const [name, spec] of Object.entries(inputs)) {
      expect(spec.description, name).toMatch(/\S/);
      if (spec.default !== undefined && typeof spec.default !== 'string') {
        expect(spec.type, name).toBe(Array.isArray(spec.default) ? 'array' : typeof spec.default);
      }
    }
  });

  it('has defaults that pass their own regex and options, with patterns GitLab (RE2) accepts', () => {
    for (const [name, spec] of Object.entries(inputs)) {
      if (spec.regex) {
        expect(spec.regex, `${name}: RE2 has no lookaround or backreferences`).not.toMatch(/\(\?[=!<]|\\[1-9]/);
        if (spec.default !== undefined) expect(String(spec.default), name).toMatch(new RegExp(spec.regex));
      }
      if (spec.options && spec.default !== undefined) expect(spec.options, name).toContain(spec.default);
    }
  });

  it('passes every program input as CODEBUILD_IMAGE_<NAME>, and nothing else but the report dir', () => {
    const job = Object.values(jobDoc)[0] as Job;
    const expected = Object.keys(inputs)
      .filter((n) => !templateOnly.includes(n))
      .map((n) => `CODEBUILD_IMAGE_${n.toUpperCase()}`);
    expect(Object.keys(job.variables).sort()).toEqual([...expected, 'CODEBUILD_IMAGE_REPORT_DIR'].sort());
    for (const name of Object.keys(inputs)) {
      // gitlab-ci-local validates an input only where it is interpolated.
      expect(templateText, name).toContain(`$[[ inputs.${name} ]]`);
    }
  });

  it('pins the sha256 of dist/index.js', (ctx) => {
    const dist = join(repoRoot, 'dist/index.js');
    if (!existsSync(dist)) {
      ctx.skip('dist/index.js does not exist yet: `npm run build` creates it and stamps its sha256 into the template');
      return;
    }
    const sha256 = createHash('sha256').update(readFileSync(dist)).digest('hex');
    expect(templateText, 'templates/build.yml is stale: run `node scripts/stamp-template.mjs`').toContain(
      `cbi_sha256=${sha256}\n`,
    );
  });

  it('stamp() rewrites only the hash and project lines', () => {
    const next = stamp(templateText, 'a'.repeat(64), 'group%2Fsub%2Fproject');
    expect(next).toContain(`cbi_sha256=${'a'.repeat(64)}\n`);
    expect(next).toContain('cbi_project=group%2Fsub%2Fproject\n');
    expect(next.split('\n').length).toBe(templateText.split('\n').length);
    expect(() => stamp('no markers', 'a', 'b')).toThrow(/cbi_sha256/);
  });
});

describe('a consumer pipeline (gitlab-ci-local)', () => {
  it('gets the job with its variables from the shortest include', async () => {
    const repo = makeComponentRepo({ fixture: 'test/fixtures/consumer-minimal' });
    try {
      const pipeline = await previewPipeline(repo.dir);
      const job = pipeline['build-image'] as Job;
      expect(job.stage).toBe('build');
      expect(job.image).toEqual({ name: 'node:22-alpine' });
      expect(job.id_tokens).toEqual({ GITLAB_OIDC_TOKEN: { aud: '$CI_SERVER_URL' } });
      expect(job.variables).toMatchObject({
        CODEBUILD_IMAGE_AWS_REGION: 'eu-west-1',
        CODEBUILD_IMAGE_ROLE_ARN: 'arn:aws:iam::123456789012:role/gitlab-codebuild-image',
        CODEBUILD_IMAGE_PROJECT_NAME: 'codebuild-image',
        CODEBUILD_IMAGE_SESSION_DURATION: '3600',
        CODEBUILD_IMAGE_REPORT_DIR: '.codebuild-image/build-image',
        CODEBUILD_IMAGE_S3_PREFIX: 'contexts',
        CODEBUILD_IMAGE_TARGET: '',
      });
      expect(fromJson(job.variables.CODEBUILD_IMAGE_TAGS)).toEqual(['$CI_COMMIT_SHORT_SHA']);
      expect(fromJson(job.variables.CODEBUILD_IMAGE_BUILD_ARGS)).toEqual([]);
      // The program is fetched at the template's own commit.
      expect(job.script.join('\n')).toContain(`dist%2Findex.js/raw?ref=${repo.sha}`);
      expect(job.artifacts).toEqual({
        when: 'always',
        expire_in: '30 days',
        paths: ['.codebuild-image/build-image/build.json', '.codebuild-image/build-image/build*.log'],
        reports: {
          dotenv: '.codebuild-image/build-image/build.env',
          annotations: '.codebuild-image/build-image/annotations.json',
        },
      });
    } finally {
      repo.remove();
    }
  });

  it('passes array items with quotes, spaces and # as one JSON string', async () => {
    const repo = makeComponentRepo({
      files: { '.gitlab-ci.yml': includeWith(`${required}\nbuild_args: ["A=x y", 'B="q" # c', "C=a:b"]`) },
    });
    try {
      const job = (await previewPipeline(repo.dir))['build-image'] as Job;
      expect(fromJson(job.variables.CODEBUILD_IMAGE_BUILD_ARGS)).toEqual(['A=x y', 'B="q" # c', 'C=a:b']);
    } finally {
      repo.remove();
    }
  });

  it('fails like GitLab when a required input is missing', async () => {
    const result = await list(includeWith('aws_region: eu-west-1'));
    expect(result.code).toBe(1);
    expect(result.output).toContain('`project_name` input: required value has not been provided');
  });

  it.each([
    ['job_name: "two words"', /`job_name` input: .*does not match required regex/i],
    ['role_arn: arn:aws:iam::123:role/short-account', /`role_arn` input: .*does not match required regex/i],
    ['dotenv_prefix: lower_', /`dotenv_prefix` input: .*does not match required regex/i],
    ['s3_prefix: /contexts', /`s3_prefix` input: .*does not match required regex/i],
    ['compute_type: BUILD_GENERAL1_HUGE', /`compute_type` input: `BUILD_GENERAL1_HUGE` cannot be used because it is not in the list of allowed options/],
    ['session_duration: one hour', /`session_duration` input: provided value is not a number/],
    ['tags: latest', /`tags` input: provided value is not a array/],
  ])('rejects %s', async (bad, message) => {
    const result = await list(includeWith(`${required}\n${bad}`));
    expect(result.code).toBe(1);
    expect(result.output).toMatch(message);
  });

  it('accepts CI/CD variable references where values usually live in settings', async () => {
    const result = await list(
      includeWith('aws_region: $AWS_REGION\nrole_arn: ${AWS_ROLE_ARN}\nproject_name: $CB_PROJECT\nimage: $CI_REGISTRY_IMAGE/app'),
    );
    expect(result.output).toContain('build-image');
    expect(result.code).toBe(0);
  });

  it('keeps two includes apart, and applies the consumer’s rules, variables, extends and needs', async () => {
    const repo = makeComponentRepo({ fixture: 'test/fixtures/consumer-full' });
    try {
      const pipeline = await previewPipeline(repo.dir);
      const api = pipeline['build-api'] as Job;
      const web = pipeline['build-web'] as Job;
      expect(api.variables.CODEBUILD_IMAGE_REPORT_DIR).toBe('.codebuild-image/build-api');
      expect(web.variables.CODEBUILD_IMAGE_REPORT_DIR).toBe('.codebuild-image/build-web');
      expect(api.variables.CODEBUILD_IMAGE_DOTENV_PREFIX).toBe('API_');
      expect(web.variables.CODEBUILD_IMAGE_DOTENV_PREFIX).toBe('WEB_');
      expect((api.artifacts as { reports: { dotenv: string } }).reports.dotenv).toBe('.codebuild-image/build-api/build.env');
      expect((web.artifacts as { reports: { dotenv: string } }).reports.dotenv).toBe('.codebuild-image/build-web/build.env');
      expect(fromJson(api.variables.CODEBUILD_IMAGE_BUILD_ARGS)).toEqual(['NODE_ENV=production', 'GREETING=hello world # not a comment']);
      expect(web.variables.CODEBUILD_IMAGE_BUILDSPEC).toBe('web/buildspec.yml');

      // Consumer overrides merge into the component's job instead of replacing it.
      expect(api.rules).toEqual([{ if: '$CI_COMMIT_BRANCH == $CI_DEFAULT_BRANCH' }]);
      expect(api.variables.AWS_STS_REGIONAL_ENDPOINTS).toBe('regional');
      expect(api.variables.CODEBUILD_IMAGE_PROJECT_NAME).toBe('codebuild-image');
      expect(web.tags).toEqual(['aws']);
      expect(web.timeout).toBe('45m');
      expect(web.script).toEqual(api.script);
      const needs = (pipeline.deploy as { needs: { job: string; artifacts: boolean }[] }).needs;
      expect(needs.map((n) => [n.job, n.artifacts])).toEqual([
        ['build-api', true],
        ['build-web', true],
      ]);

      const listed = await gitlabCiLocal(repo.dir, ['--list']);
      expect(listed.code).toBe(0);
      expect(listed.output).toMatch(/build-api[\s\S]*build-web[\s\S]*deploy/);
    } finally {
      repo.remove();
    }
  });
});

/** A stand-in for dist/index.js that records what the job gave it and writes the report files. */
const fakeProgram = `
const fs = require('node:fs');
const dir = process.env.CODEBUILD_IMAGE_REPORT_DIR;
fs.mkdirSync(dir, { recursive: true });
const marked = (f) => fs.existsSync(dir + '/' + f) && f + ' ' + fs.readFileSync(dir + '/' + f, 'utf8');
console.log('FAKE at ' + __filename);
if (process.argv[2] === 'stop') { console.log('FAKE stop called for ' + (marked('build-id') || marked('build-start'))); process.exit(process.env.FAKE_STOP_FAILS ? 3 : 0); }
if (process.env.FAKE_KILLED_IN_STARTBUILD) { fs.writeFileSync(dir + '/build-start', 'marker-1'); console.log('FAKE killed in StartBuild'); process.exit(137); }
fs.writeFileSync(dir + '/build-id', 'proj:1234');
console.log('FAKE tags=' + process.env.CODEBUILD_IMAGE_TAGS.trim());
if (process.env.FAKE_FAIL) { console.log('FAKE build left running'); process.exit(3); }
fs.writeFileSync(dir + '/build.env', 'IMAGE_DIGEST=sha256:' + 'ab'.repeat(32) + '\\n');
fs.writeFileSync(dir + '/build.json', '{}');
fs.writeFileSync(dir + '/annotations.json', '{}');
`;

function runFake(opts: { tamper?: boolean; variables?: Record<string, string>; download?: boolean; projectPath?: string } = {}) {
  const sha256 = createHash('sha256').update(fakeProgram).digest('hex');
  const scriptUrl = opts.download ? '' : '\nscript_url: fake/index.js';
  const ciYaml =
    includeWith(`${required}\ntags: [$CI_COMMIT_SHORT_SHA, "latest"]${scriptUrl}`) +
    'deploy:\n  stage: deploy\n  needs: [build-image]\n  script:\n    - echo "DEPLOY digest=$IMAGE_DIGEST"\n';
  return runPipeline({
    files: {
      '.gitlab-ci.yml': ciYaml,
      'templates/build.yml': stamp(templateText, sha256, 'acme%2Fcodebuild-image'),
      'fake/index.js': opts.tamper ? `${fakeProgram}// changed\n` : fakeProgram,
    },
    jobs: ['deploy'],
    needs: true,
    variables: opts.variables ?? {},
    timeoutMs: 60_000,
    ...(opts.projectPath ? { projectPath: opts.projectPath } : {}),
  });
}

/**
 * A GitLab API that serves the fake program as dist/index.js of `projects` only (any ref), answering 404
 * for any other project, and records the paths asked for.
 */
async function fakeFilesApi(projects: string[]): Promise<{ url: string; asked: string[]; close(): Promise<void> }> {
  const asked: string[] = [];
  const server = createServer((req, res) => {
    asked.push(req.url ?? '');
    const m = /^\/api\/v4\/projects\/([^/]+)\/repository\/files\/dist%2Findex\.js\/raw\?ref=[0-9a-f]{40}$/.exec(req.url ?? '');
    const served = m && projects.includes(decodeURIComponent(m[1] ?? ''));
    res.writeHead(served ? 200 : 404).end(served ? fakeProgram : '{"message":"404 File Not Found"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/api/v4`,
    asked,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('the job script (gitlab-ci-local, shell executor, fake program)', () => {
  it('verifies and runs the pinned program, and the digest reaches a later job by dotenv', async () => {
    const jobTmp = mkdtempSync(join(tmpdir(), 'cbi-job-tmp-'));
    const result = await runFake({ variables: { TMPDIR: jobTmp } });
    try {
      expect(result.code, result.output).toBe(0);
      expect(result.output).toMatch(/FAKE tags=\["[0-9a-f]{8}","latest"\]/);
      expect(result.output).toContain(`DEPLOY digest=sha256:${'ab'.repeat(32)}`);
      expect(result.output).not.toContain('FAKE stop called');
      // after_script took the program's copy away: shell runners keep TMPDIR from job to job.
      expect(result.output).toContain(`FAKE at ${jobTmp}/codebuild-image-`);
      expect(readdirSync(jobTmp)).toEqual([]);
    } finally {
      result.repo.remove();
      rmSync(jobTmp, { recursive: true, force: true });
    }
  });

  it.each(['forks/codebuild-image', 'mirrors/platform/ci/cbi'])(
    'downloads the program at the component commit from the project it is included from (%s), after the stamped one',
    async (projectPath) => {
      const api = await fakeFilesApi([projectPath]);
      const result = await runFake({ download: true, projectPath, variables: { CI_API_V4_URL: api.url } });
      try {
        expect(result.code, result.output).toBe(0);
        expect(result.output).toMatch(/FAKE tags=/);
        // The stamped project first (a 404 here), then this one, both at the commit the include resolved to.
        const encoded = encodeURIComponent(projectPath);
        expect(api.asked).toEqual([
          `/api/v4/projects/acme%2Fcodebuild-image/repository/files/dist%2Findex.js/raw?ref=${result.repo.sha}`,
          expect.stringMatching(/^\/api\/v4\/projects\/acme%2Fcodebuild-image\//),
          `/api/v4/projects/${encoded}/repository/files/dist%2Findex.js/raw?ref=${result.repo.sha}`,
        ]);
      } finally {
        result.repo.remove();
        await api.close();
      }
    },
  );

  it('names the fix when no project serves the program', async () => {
    const api = await fakeFilesApi([]);
    const result = await runFake({ download: true, projectPath: 'forks/codebuild-image', variables: { CI_API_V4_URL: api.url } });
    try {
      expect(result.code).not.toBe(0);
      expect(result.output).toContain('Included from a fork or mirror at another path? Set the script_url input to');
      expect(result.output).not.toContain('FAKE tags=');
    } finally {
      result.repo.remove();
      await api.close();
    }
  });

  it('refuses a program whose sha256 differs from the pinned one', async () => {
    const result = await runFake({ tamper: true });
    try {
      expect(result.code).not.toBe(0);
      expect(result.output).toMatch(/fake\/index\.js has sha256 [0-9a-f]{64}, but this template pins [0-9a-f]{64}/);
      expect(result.output).not.toContain('FAKE tags=');
    } finally {
      result.repo.remove();
    }
  });

  it('runs stop from after_script when only the start marker exists (killed during StartBuild)', async () => {
    const result = await runFake({ variables: { FAKE_KILLED_IN_STARTBUILD: '1' } });
    try {
      expect(result.code).not.toBe(0);
      expect(result.output).toContain('FAKE killed in StartBuild');
      expect(result.output).toContain('FAKE stop called for build-start marker-1');
    } finally {
      result.repo.remove();
    }
  });

  it.each([['stop succeeds', {}], ['stop fails', { FAKE_STOP_FAILS: '1' }]])(
    'stops the build from after_script when the job ends before the build did, then removes the program (%s)',
    async (_, variables) => {
      const jobTmp = mkdtempSync(join(tmpdir(), 'cbi-job-tmp-'));
      const result = await runFake({ variables: { FAKE_FAIL: '1', TMPDIR: jobTmp, ...variables } });
      try {
        expect(result.code).not.toBe(0);
        expect(result.output).toContain('FAKE build left running');
        expect(result.output).toContain('FAKE stop called for build-id proj:1234');
        expect(result.output).toContain(`FAKE at ${jobTmp}/codebuild-image-`);
        expect(readdirSync(jobTmp)).toEqual([]);
      } finally {
        result.repo.remove();
        rmSync(jobTmp, { recursive: true, force: true });
      }
    },
  );
});
