/**
 * The hint for Dockerfiles that still read a secret build arg through `ARG`: the parser finds every declaring
 * ARG line the way BuildKit reads the file, and the job prints one warning per line before any AWS call.
 */
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/shared/errors';
import { findSecretArgs, secretArgHints } from '../../src/inputs/secret-arg-hint';
import type { SecretBuildArg } from '../../src/inputs/settings';
import { AUDIENCE, jobEnv, runJob, sign } from '../helpers/job';
import { memoryOutput } from '../helpers/output';
import { settingsFixture } from '../helpers/settings-fixture';
import { startStsStub, type StsStub } from '../helpers/sts-stub';

const lines = (...l: string[]) => `${l.join('\n')}\n`;

describe('findSecretArgs', () => {
  it('finds ARG in every stage and before the first FROM, with the line where each starts', () => {
    const dockerfile = lines(
      'ARG NPM_TOKEN',
      'FROM node:22 AS deps',
      'ARG NPM_TOKEN',
      'RUN npm ci',
      '',
      'FROM node:22 AS build',
      'COPY --from=deps /app /app',
      'ARG NPM_TOKEN',
      'FROM scratch',
      'COPY --from=build /app /app',
    );
    expect(findSecretArgs(dockerfile, ['NPM_TOKEN'])).toEqual([
      { line: 1, name: 'NPM_TOKEN' },
      { line: 3, name: 'NPM_TOKEN' },
      { line: 8, name: 'NPM_TOKEN' },
    ]);
  });

  it.each([
    ['unquoted default', 'ARG NPM_TOKEN=default'],
    ['double-quoted default with a blank', 'ARG NPM_TOKEN="a b"'],
    ["single-quoted default", "ARG NPM_TOKEN='a b'"],
    ['empty default', 'ARG NPM_TOKEN='],
    ['empty quoted default', 'ARG NPM_TOKEN=""'],
    ['lower-case instruction', 'arg NPM_TOKEN'],
    ['mixed-case instruction, leading blanks and a tab', '  \tArg\tNPM_TOKEN'],
    ['Windows line ends', 'ARG NPM_TOKEN\r'],
  ])('ARG with %s', (_name, arg) => {
    expect(findSecretArgs(lines('FROM alpine', arg, 'RUN true'), ['NPM_TOKEN'])).toEqual([{ line: 2, name: 'NPM_TOKEN' }]);
  });

  it('several names in one ARG, quoted defaults holding blanks and other names not split apart', () => {
    const dockerfile = lines('FROM alpine', 'ARG A=1 NPM_TOKEN C="x NPM_TOKEN y" GH_TOKEN=\'z NPM_TOKEN\'');
    expect(findSecretArgs(dockerfile, ['NPM_TOKEN', 'GH_TOKEN', 'OTHER'])).toEqual([
      { line: 2, name: 'NPM_TOKEN' },
      { line: 2, name: 'GH_TOKEN' },
    ]);
  });

  it('names that only look alike do not match: ARG names are case-sensitive and whole', () => {
    const dockerfile = lines(
      'FROM alpine',
      'ARG NPM_TOKEN_FILE',
      'ARG MY_NPM_TOKEN=x',
      'ARG npm_token',
      'ARG Npm_Token',
      'ENV NPM_TOKEN=x',
      'RUN echo ARG NPM_TOKEN',
      'LABEL x="ARG NPM_TOKEN"',
      'ONBUILD ARG NPM_TOKEN',
      'ARGS NPM_TOKEN',
    );
    expect(findSecretArgs(dockerfile, ['NPM_TOKEN'])).toEqual([]);
  });

  it('comments are not instructions, also inside a continued instruction', () => {
    const dockerfile = lines(
      '# ARG NPM_TOKEN',
      '   # ARG NPM_TOKEN',
      'FROM alpine',
      'RUN echo a \\',
      '# ARG NPM_TOKEN',
      '    && echo b',
      'ARG A \\',
      '  # a comment line',
      '',
      '  NPM_TOKEN=1',
      '# a comment ending with a backslash does not continue \\',
      'ARG GH_TOKEN',
    );
    expect(findSecretArgs(dockerfile, ['NPM_TOKEN', 'GH_TOKEN'])).toEqual([
      { line: 7, name: 'NPM_TOKEN' },
      { line: 12, name: 'GH_TOKEN' },
    ]);
  });

  it('a continued line is part of the instruction before it, and counts as its start line', () => {
    const dockerfile = lines('FROM alpine', 'RUN echo \\', 'ARG NPM_TOKEN', 'ARG \\', '   NPM_TOKEN \\  ', 'GH_TOKEN');
    expect(findSecretArgs(dockerfile, ['NPM_TOKEN', 'GH_TOKEN'])).toEqual([
      { line: 4, name: 'NPM_TOKEN' },
      { line: 4, name: 'GH_TOKEN' },
    ]);
  });

  it('with the escape directive, ` continues lines and \\ does not', () => {
    const dockerfile = lines('# escape=`', 'FROM mcr.microsoft.com/windows/servercore', 'RUN dir C:\\', 'ARG NPM_TOKEN', 'RUN echo `', 'ARG GH_TOKEN', 'ARG A `', '  GH_TOKEN');
    expect(findSecretArgs(dockerfile, ['NPM_TOKEN', 'GH_TOKEN'])).toEqual([
      { line: 4, name: 'NPM_TOKEN' },
      { line: 7, name: 'GH_TOKEN' },
    ]);
  });

  it('the escape directive counts after other directives, not after a comment, an empty line or an instruction', () => {
    const body = ['FROM alpine', 'RUN echo `', 'ARG NPM_TOKEN'];
    expect(findSecretArgs(lines('# syntax=docker/dockerfile:1', '#  ESCAPE = `', ...body), ['NPM_TOKEN'])).toEqual([]);
    expect(findSecretArgs(lines('# a comment', '# escape=`', ...body), ['NPM_TOKEN'])).toEqual([{ line: 5, name: 'NPM_TOKEN' }]);
    expect(findSecretArgs(lines('', '# escape=`', ...body), ['NPM_TOKEN'])).toEqual([{ line: 5, name: 'NPM_TOKEN' }]);
    expect(findSecretArgs(lines('FROM alpine', '# escape=`', 'RUN echo `', 'ARG NPM_TOKEN'), ['NPM_TOKEN'])).toEqual([{ line: 4, name: 'NPM_TOKEN' }]);
  });

  it('a heredoc body of RUN, COPY or ADD is not an instruction; the line after its delimiter is', () => {
    const dockerfile = lines(
      'FROM alpine',
      'RUN <<EOF',
      'ARG NPM_TOKEN',
      'EOF',
      'COPY <<-"END" /etc/x',
      '\tARG NPM_TOKEN',
      '\tEND',
      'RUN cat <<A 3<<\'B\' \\',
      '  && true',
      'ARG NPM_TOKEN',
      'A',
      'ARG NPM_TOKEN',
      'B',
      'ARG NPM_TOKEN',
    );
    expect(findSecretArgs(dockerfile, ['NPM_TOKEN'])).toEqual([{ line: 14, name: 'NPM_TOKEN' }]);
  });

  it('no heredoc: a quoted <<, a here-string, the exec form, and << in other instructions', () => {
    const dockerfile = lines(
      'FROM alpine',
      'RUN echo "<<EOF"',
      'ARG NPM_TOKEN',
      'RUN cat <<<EOF',
      'ARG NPM_TOKEN',
      'RUN ["sh", "-c", "cat <<EOF"]',
      'ARG NPM_TOKEN',
      'LABEL a=<<EOF',
      'ARG NPM_TOKEN',
    );
    expect(findSecretArgs(dockerfile, ['NPM_TOKEN']).map((f) => f.line)).toEqual([3, 5, 7, 9]);
  });

  it('an unterminated heredoc hides the rest of the file, as BuildKit reads it', () => {
    expect(findSecretArgs(lines('FROM alpine', 'RUN <<EOF', 'ARG NPM_TOKEN', 'EOF ', 'ARG NPM_TOKEN'), ['NPM_TOKEN'])).toEqual([]);
  });

  it('no secret names, or no ARG: nothing', () => {
    expect(findSecretArgs(lines('FROM alpine', 'ARG NPM_TOKEN'), [])).toEqual([]);
    expect(findSecretArgs(lines('FROM alpine', 'RUN true'), ['NPM_TOKEN'])).toEqual([]);
    expect(findSecretArgs('', ['NPM_TOKEN'])).toEqual([]);
  });

  it('a byte order mark and a last line without a newline do not hide an ARG', () => {
    expect(findSecretArgs('\uFEFFARG NPM_TOKEN\nFROM alpine\nARG NPM_TOKEN', ['NPM_TOKEN'])).toEqual([
      { line: 1, name: 'NPM_TOKEN' },
      { line: 3, name: 'NPM_TOKEN' },
    ]);
  });
});

describe('secretArgHints', () => {
  let dir: string;
  const npm: SecretBuildArg = { name: 'NPM_TOKEN', type: 'SECRETS_MANAGER', reference: 'ci/npm-token:token' };
  const DOCKERFILE = lines('FROM node:22', 'WORKDIR /app', 'COPY . .', 'ARG NPM_TOKEN=unset', 'RUN npm ci');

  beforeEach(() => {
    dir = realpathSync(mkdtempSync(path.join(tmpdir(), 'secret-arg-hint-')));
    mkdirSync(path.join(dir, 'app'));
    writeFileSync(path.join(dir, 'app', 'Dockerfile'), DOCKERFILE);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const settings = (overrides: Parameters<typeof settingsFixture>[0] = {}) =>
    settingsFixture({ checkoutDir: dir, contextDir: path.join(dir, 'app'), dockerfile: 'Dockerfile', secretBuildArgs: [npm], ...overrides });

  it('one line per finding: the Dockerfile from the checkout, its line, the name and both fixes, never the reference', () => {
    expect(secretArgHints(settings())).toEqual([
      'The Dockerfile "app/Dockerfile" declares ARG NPM_TOKEN on line 4, but secret build arg NPM_TOKEN arrives as a BuildKit secret, ' +
        'not a build arg, so that ARG does not get it (it is empty, or its default): read it with RUN --mount=type=secret,id=NPM_TOKEN,env=NPM_TOKEN …, ' +
        "or set secret_build_args_as: build-arg to pass it as before (visible in the image's history).",
    ]);
    expect(secretArgHints(settings()).join('\n')).not.toContain('ci/npm-token');
  });

  it('a line for each declaring ARG and each secret it declares, only for secret build args', () => {
    writeFileSync(path.join(dir, 'app', 'build.Dockerfile'), lines('ARG NPM_TOKEN', 'FROM alpine', 'ARG GH_TOKEN PLAIN', 'FROM alpine', 'ARG NPM_TOKEN'));
    const hints = secretArgHints(
      settings({
        dockerfile: 'build.Dockerfile',
        buildArgs: [{ name: 'PLAIN', value: 'x' }],
        secretBuildArgs: [npm, { name: 'GH_TOKEN', type: 'PARAMETER_STORE', reference: '/ci/gh' }],
      }),
    );
    expect(hints.map((h) => /^The Dockerfile "app\/build\.Dockerfile" declares ARG (\w+) on line (\d+),/.exec(h)?.slice(1))).toEqual([
      ['NPM_TOKEN', '1'],
      ['GH_TOKEN', '3'],
      ['NPM_TOKEN', '5'],
    ]);
  });

  it('a Dockerfile path that holds a control character is shown escaped', () => {
    writeFileSync(path.join(dir, 'app', 'a\nb'), DOCKERFILE);
    expect(secretArgHints(settings({ dockerfile: 'a\nb' }))[0]).toMatch(/^The Dockerfile "app\/a\\nb" declares ARG NPM_TOKEN on line 4,/);
  });

  it('nothing without secret build args', () => {
    expect(secretArgHints(settings({ secretBuildArgs: [] }))).toEqual([]);
  });

  it('nothing when secret build args go in as build args', () => {
    expect(secretArgHints(settings())).toHaveLength(1);
    expect(secretArgHints(settings({ buildkit: { ...settingsFixture().buildkit, secretsAs: 'build-arg' } }))).toEqual([]);
  });

  it("nothing with the user's own buildspec: it decides how the secret reaches its build", () => {
    expect(secretArgHints(settings({ buildspec: 'buildspec.yml', buildspecText: 'version: 0.2\nphases: {}\n' }))).toEqual([]);
  });

  it('nothing when the Dockerfile cannot be read', () => {
    expect(secretArgHints(settings({ dockerfile: 'missing.Dockerfile' }))).toEqual([]);
    mkdirSync(path.join(dir, 'app', 'dir.Dockerfile'));
    expect(secretArgHints(settings({ dockerfile: 'dir.Dockerfile' }))).toEqual([]);
  });
});

describe('through the job', () => {
  let checkout: string;
  let sts: StsStub;

  afterEach(async () => {
    rmSync(checkout, { recursive: true, force: true });
    await sts.close();
  });

  it('prints the warning after the context is read and before the first AWS request', async () => {
    checkout = realpathSync(mkdtempSync(path.join(tmpdir(), 'secret-arg-hint-job-')));
    writeFileSync(path.join(checkout, 'Dockerfile'), lines('FROM node:22', 'ARG NPM_TOKEN', 'RUN npm ci'));
    const out = memoryOutput();
    let linesAtFirstRequest: number | undefined;
    // Every AWS endpoint: records how many lines the job had printed, then denies (STS's error, not retried).
    sts = await startStsStub();
    sts.fail = { status: 403, code: 'AccessDenied', message: 'denied' };
    sts.onRequest = () => (linesAtFirstRequest ??= out.lines.length);
    const token = await sign({ aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 });
    const env = jobEnv({ checkout, token, endpoint: sts.url }, { secret_build_args: JSON.stringify(['NPM_TOKEN=secretsmanager:ci/npm-token']) });

    const { code } = await runJob(env, [], out);

    expect(code).toBe(ExitCode.AwsError);
    const warnings = out.lines.filter((l) => l.startsWith('WARNING: '));
    expect(warnings).toEqual([expect.stringMatching(/^WARNING: The Dockerfile "Dockerfile" declares ARG NPM_TOKEN on line 2, but secret build arg NPM_TOKEN arrives as a BuildKit secret/)]);
    const at = out.lines.indexOf(warnings[0] ?? '');
    // After the (collapsed) context section, so it shows; before anything reached AWS.
    expect(out.lines.indexOf('[end context]')).toBe(at - 1);
    expect(linesAtFirstRequest).toBeDefined();
    expect(at).toBeLessThan(linesAtFirstRequest ?? 0);
    expect(out.lines.join('\n')).not.toContain('ci/npm-token');
  });
});
