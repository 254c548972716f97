import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { expectedSubject, explainAssumeRoleFailure, resolveCredentials, sessionName } from '../../src/aws/credentials';
import type { GitLabJob } from '../../src/inputs/settings';
import { memoryOutput } from '../helpers/output';
import { settingsFixture } from '../helpers/settings-fixture';
import { startStsStub, type StsStub } from '../helpers/sts-stub';

const job = (projectPath?: string, pipelineId?: string, jobId?: string): GitLabJob => ({
  ...settingsFixture().gitlab,
  projectPath,
  pipelineId,
  jobId,
});

describe('sessionName', () => {
  it.each<[string, GitLabJob, string]>([
    ['plain', job('group/app', '1001', '2002'), 'gitlab-group-app-p1001-j2002'],
    ['keeps allowed punctuation', job('my.group/app_x', '1', '2'), 'gitlab-my.group-app_x-p1-j2'],
    ['accents stripped', job('gruppé/çà', '1', '2'), 'gitlab-gruppe-ca-p1-j2'],
    ['other unicode replaced', job('团队/app 名', '1', '2'), 'gitlab-app-p1-j2'],
    ['missing project', job(undefined, '1', '2'), 'gitlab-p1-j2'],
    ['missing pipeline', job('g/a', undefined, '2'), 'gitlab-g-a-j2'],
    ['nothing known', job(undefined, undefined, undefined), 'gitlab'],
    ['long path keeps the ids', job(`a/${'x'.repeat(100)}`, '123456789', '987654321'), `gitlab-a-${'x'.repeat(33)}-p123456789-j987654321`],
    ['huge ids', job('g/a', '9'.repeat(40), '8'.repeat(40)), `${'9'.repeat(22)}-j${'8'.repeat(40)}`],
  ])('%s', (_name, j, expected) => {
    const name = sessionName(j);
    expect(name).toBe(expected);
    expect(name).toMatch(/^[\w+=,.@-]{2,64}$/);
  });

  it('stays unique per job when the path is truncated', () => {
    const long = `group/${'project-'.repeat(20)}`;
    expect(sessionName(job(long, '1', '10'))).not.toBe(sessionName(job(long, '1', '11')));
    expect(sessionName(job(long, '1', '10')).endsWith('-p1-j10')).toBe(true);
  });
});

describe('resolveCredentials', () => {
  let sts: StsStub;
  const saved = { ...process.env };
  beforeAll(async () => {
    sts = await startStsStub();
  });
  afterAll(() => sts.close());
  afterEach(() => {
    process.env = { ...saved };
    sts.requests.length = 0;
    sts.fail = undefined;
  });

  it('uses the default chain without a token', async () => {
    process.env.AWS_ACCESS_KEY_ID = 'AKIAENVKEY';
    process.env.AWS_SECRET_ACCESS_KEY = 'env-secret';
    const { provider, identity } = resolveCredentials(settingsFixture({ idToken: undefined, roleArn: undefined }), memoryOutput());
    expect(identity).toBe('default AWS credential chain');
    expect((await provider()).accessKeyId).toBe('AKIAENVKEY');
  });

  it('assumes the role at AWS_ENDPOINT_URL_STS with the token', async () => {
    process.env.AWS_ENDPOINT_URL_STS = sts.url;
    const s = settingsFixture({ sessionDuration: 7200 });
    const out = memoryOutput();
    const { provider, identity } = resolveCredentials(s, out);
    expect(identity).toBe('role arn:aws:iam::000000000000:role/gitlab-builder, session gitlab-group-app-p1001-j2002');
    expect(identity + out.lines.join('\n')).not.toContain(s.idToken);
    const creds = await provider();
    expect(creds).toMatchObject({ accessKeyId: 'ASIASTUB', secretAccessKey: 'stub-secret', sessionToken: 'stub-session' });
    expect(sts.requests).toHaveLength(1);
    expect(sts.requests[0]).toMatchObject({
      Action: 'AssumeRoleWithWebIdentity',
      RoleArn: s.roleArn,
      RoleSessionName: 'gitlab-group-app-p1001-j2002',
      WebIdentityToken: s.idToken,
      DurationSeconds: '7200',
    });
  });

  it.each([
    [400, 'InvalidIdentityToken', 'did not accept the GitLab OIDC token'],
    [403, 'AccessDenied', 'refused to let this job assume'],
    [400, 'ExpiredTokenException', 'has expired'],
    [400, 'IDPRejectClaim', 'did not accept'],
    [400, 'IDPCommunicationError', 'could not reach the OIDC issuer'],
  ])('explains a real %i %s answer', async (status, code, fragment) => {
    process.env.AWS_ENDPOINT_URL_STS = sts.url;
    sts.fail = { status, code, message: 'refused by stub' };
    const s = settingsFixture();
    const error = await resolveCredentials(s, memoryOutput())
      .provider()
      .then(() => undefined, (e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(explainAssumeRoleFailure(error, s)).toContain(fragment);
  });
});

describe('explainAssumeRoleFailure', () => {
  const s = settingsFixture();
  const err = (name: string) => Object.assign(new Error('whatever text'), { name });

  it('lists audience, subject and provider causes for AccessDenied', () => {
    const hint = explainAssumeRoleFailure(err('AccessDenied'), s) ?? '';
    expect(hint).toContain('gitlab.example.com:aud with exactly this value');
    expect(hint).toContain('https://gitlab.example.com');
    expect(hint).toContain('project_path:group/app:ref_type:branch:ref:main');
    expect(hint).toContain('oidc-provider/gitlab.example.com');
    expect(hint.split('\n').length).toBeGreaterThan(3);
  });

  it('recognises SDK exception names without a Code', () => {
    expect(explainAssumeRoleFailure(err('IDPRejectedClaimException'), s)).toContain('did not accept');
    expect(explainAssumeRoleFailure(err('InvalidIdentityTokenException'), s)).toContain('oidc-provider');
  });

  it('reads the Code field of raw errors', () => {
    expect(explainAssumeRoleFailure({ Code: 'ExpiredTokenException' }, s)).toContain('MaxSessionDuration');
  });

  it('ignores other errors and message text', () => {
    expect(explainAssumeRoleFailure(err('NetworkingError'), s)).toBeUndefined();
    expect(explainAssumeRoleFailure(new Error('AccessDenied: not authorized'), s)).toBeUndefined();
    expect(explainAssumeRoleFailure('AccessDenied', s)).toBeUndefined();
  });

  it('builds the subject of tag pipelines from CI_COMMIT_TAG', () => {
    const tagged = settingsFixture({ gitlab: { ...s.gitlab, ref: 'v1.0.0' } });
    expect(expectedSubject(tagged, { CI_COMMIT_TAG: 'v1.0.0' })).toBe('project_path:group/app:ref_type:tag:ref:v1.0.0');
    expect(expectedSubject(s, {})).toBe('project_path:group/app:ref_type:branch:ref:main');
  });
});
