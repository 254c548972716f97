/**
 * Bad input through the program's entry (`run`): one line per problem naming the input, exit 2, every
 * problem of the inputs, the buildspec file and the context in one run, values printed safely, secrets
 * never printed, and no AWS call: every AWS endpoint points at a server that counts requests.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { UnsecuredJWT } from 'jose';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ExitCode } from '../../src/shared/errors';
import { USAGE } from '../../src/main';
import { AUDIENCE, jobEnv as jobEnvOf, runJob, sign, type JobSetup } from '../helpers/job';

let server: Server;
let requests = 0;
const job: JobSetup = { checkout: '', token: '', endpoint: '' };

beforeAll(async () => {
  server = createServer((req, res) => {
    requests += 1;
    res.writeHead(500).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  job.endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  job.token = await sign({ aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 });
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

beforeEach(() => {
  job.checkout = realpathSync(mkdtempSync(path.join(tmpdir(), 'bad-input-')));
  writeFileSync(path.join(job.checkout, 'Dockerfile'), 'FROM scratch\n');
  requests = 0;
});
afterEach(() => rmSync(job.checkout, { recursive: true, force: true }));

/** A valid job (test/helpers/job.ts) in this test's checkout, whose every AWS endpoint is the counting server. */
const jobEnv = (inputs: Record<string, string> = {}, extra: Record<string, string> = {}) => jobEnvOf(job, inputs, extra);

describe('OIDC tokens are checked before STS', () => {
  it.each<[string, () => Promise<string>, RegExp]>([
    ['not a JWT', async () => 'this-is-not-a-token-0123456789', /does not hold a JWT/],
    ['expired', () => sign({ aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) - 7200 }), /expired 2 h ago/],
    ['unsigned (alg none)', async () => new UnsecuredJWT({ aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 }).encode(), /unsigned JWT/],
    ['for another audience', () => sign({ aud: 'sts.amazonaws.com', exp: Math.floor(Date.now() / 1000) + 300 }), /audience "sts\.amazonaws\.com" where "https:\/\/gitlab\.example\.com" was expected/],
  ])('%s: one line naming id_token_variable, the token never printed, no AWS call', async (_name, make, expected) => {
    const bad = await make();
    const r = await runJob(jobEnv({}, { GITLAB_OIDC_TOKEN: bad }));
    expect(r.code).toBe(ExitCode.BadInput);
    expect(r.lines).toEqual([expect.stringMatching(/^ERROR: input id_token_variable: \$GITLAB_OIDC_TOKEN /)]);
    expect(r.text).toMatch(expected);
    for (const part of bad.split('.').filter((p) => p.length > 8)) expect(r.text).not.toContain(part);
    expect(requests).toBe(0);
  });
});

describe('values are printed safely', () => {
  it('a tag holding a line break cannot forge a log line', async () => {
    const r = await runJob(jobEnv({ tags: JSON.stringify(['v1\nBuild status: SUCCEEDED']) }));
    expect(r.code).toBe(ExitCode.BadInput);
    expect(r.lines).toEqual(['ERROR: input tags: "v1\\nBuild status: SUCCEEDED" is not a Docker tag: 1–128 of letters, digits, _ . -, not starting with . or -']);
    expect(requests).toBe(0);
  });

  it('a 100 KB value is shortened, with its length', async () => {
    const r = await runJob(jobEnv({ context: 'x'.repeat(100_000) }));
    expect(r.code).toBe(ExitCode.BadInput);
    expect(r.text.length).toBeLessThan(1000);
    expect(r.text).toContain('(100000 characters)');
  });

  it('an unknown region gets a suggestion and says when it came from AWS_REGION', async () => {
    const r = await runJob(jobEnv({ aws_region: '' }, { AWS_REGION: 'eu-wset-1' }));
    expect(r.lines).toEqual([
      'ERROR: input aws_region: "eu-wset-1" is not in the AWS SDK\'s list of regions; did you mean eu-west-1? (the value comes from AWS_REGION, since aws_region is empty)',
    ]);
    expect(requests).toBe(0);
  });
});

describe('every problem at once: inputs, the buildspec file and the context', () => {
  it('reports a bad input, a buildspec that is not YAML and an invalid .dockerignore pattern in one run', async () => {
    writeFileSync(path.join(job.checkout, 'buildspec.yml'), 'version: [0.2\n');
    writeFileSync(path.join(job.checkout, '.dockerignore'), 'ok\n!\n');
    const r = await runJob(jobEnv({ buildspec: 'buildspec.yml', build_timeout: '4' }));
    expect(r.code).toBe(ExitCode.BadInput);
    expect(r.lines.map((l) => /^ERROR: input (\w+):/.exec(l)?.[1])).toEqual(['buildspec', 'build_timeout', 'context']);
    expect(r.text).toContain('buildspec.yml is not valid YAML');
    expect(r.text).toContain('.dockerignore: illegal exclusion pattern');
    expect(requests).toBe(0);
  });

  it('lists context name problems line by line, each line escaped', async () => {
    mkdirSync(path.join(job.checkout, 'a\\b'));
    execFileSync('sh', ['-c', `printf x > "$1/bad$(printf '\\377')name"`, 'sh', job.checkout]);
    const r = await runJob(jobEnv({ s3_bucket: 'Bad_Bucket' }));
    expect(r.code).toBe(ExitCode.BadInput);
    expect(r.lines[0]).toMatch(/^ERROR: input s3_bucket: /);
    expect(r.lines).toContain('ERROR:   a\\b');
    expect(r.lines).toContain('ERROR:   bad\uFFFDname');
    expect(requests).toBe(0);
  });

  it('a FIFO named .dockerignore is refused at once, not waited on', { timeout: 5000 }, async () => {
    execFileSync('mkfifo', [path.join(job.checkout, '.dockerignore')]);
    const r = await runJob(jobEnv());
    expect(r.code).toBe(ExitCode.BadInput);
    // With valid inputs, the job's first line opens the context section; the problem is the only other line.
    expect(r.lines.filter((l) => !/^\[(section|end) context/.test(l))).toEqual([expect.stringMatching(/^ERROR: input context: \.dockerignore is a FIFO \(named pipe\), not a file/)]);
  });

  it('a context directory name that is not UTF-8 is named as such, not as missing', async () => {
    // Node decodes the variable's bytes as UTF-8, turning each bad byte into U+FFFD.
    const r = await runJob(jobEnv({ context: 'caf\uFFFD' }));
    expect(r.lines).toEqual([expect.stringMatching(/^ERROR: input context: "caf\uFFFD" does not exist: the name is not valid UTF-8/)]);
  });
});

describe('secrets in inputs', () => {
  it('a secret value pasted into secret_build_args is never printed and gets storage advice', async () => {
    const secret = 'npm_S3cr3tV4lu3xyz';
    const r = await runJob(jobEnv({ secret_build_args: JSON.stringify([`NPM_TOKEN=${secret}`, secret]) }));
    expect(r.code).toBe(ExitCode.BadInput);
    expect(r.text).not.toContain(secret);
    expect(r.lines).toHaveLength(2);
    for (const line of r.lines) {
      expect(line).toContain('a secret never belongs in an input');
      expect(line).toContain('Parameter Store (aws ssm put-parameter --type SecureString');
      expect(line).toContain('Secrets Manager (aws secretsmanager create-secret');
    }
  });
});

describe('arguments', () => {
  it.each([['--help'], ['-h'], ['help']])('%s prints the usage and exits 0', async (arg) => {
    const r = await runJob(jobEnv(), [arg]);
    expect(r.code).toBe(ExitCode.Success);
    expect(r.text).toBe(USAGE);
    expect(requests).toBe(0);
  });

  it('an unknown option is one line pointing to --help', async () => {
    const r = await runJob(jobEnv(), ['--frobnicate']);
    expect(r.code).toBe(ExitCode.BadInput);
    expect(r.lines).toEqual([expect.stringMatching(/^ERROR: Unknown option '--frobnicate'.*; see --help$/)]);
  });
});


describe('registry credentials', () => {
  it('a password given in place of a reference: one line naming registry_credentials and the fix, never the password, no AWS call', async () => {
    const password = 'glpat-Xy7hunter2registry';
    const r = await runJob(jobEnv({ registry_credentials: JSON.stringify([`registry.gitlab.com=${password}`]) }));
    expect(r.code).toBe(ExitCode.BadInput);
    expect(r.lines).toEqual([expect.stringMatching(/^ERROR: input registry_credentials: registry\.gitlab\.com must be REGISTRY=secretsmanager:<secret-id>/)]);
    expect(r.text).toContain('store it in Secrets Manager or Parameter Store');
    expect(r.text).not.toContain(password);
    expect(requests).toBe(0);
  });
});

describe('signing', () => {
  it('sign_with that is not a KMS key or alias ARN: one line naming it and the expected form, no AWS call', async () => {
    const r = await runJob(jobEnv({ sign_with: 'alias/image-signing' }));
    expect(r.code).toBe(ExitCode.BadInput);
    expect(r.lines).toEqual([
      'ERROR: input sign_with: "alias/image-signing" is not valid; expected a KMS key ARN, arn:aws:kms:<region>:<account>:key/<id>, or alias ARN, arn:aws:kms:<region>:<account>:alias/<name>',
    ]);
    expect(requests).toBe(0);
  });
});

describe("AWS's limits, refused before AWS", () => {
  it('a build arg over 4,096 characters: one line naming build_args and the arg, never its value, no AWS call', async () => {
    const value = 'v'.repeat(5000);
    const r = await runJob(jobEnv({ build_args: JSON.stringify([`NOTES=${value}`]) }));
    expect(r.code).toBe(ExitCode.BadInput);
    expect(r.lines).toEqual([expect.stringMatching(/^ERROR: input build_args: the value of NOTES is 5,000 characters; AWS takes at most 4,096 characters in one CodeBuild environment variable: pass it as a secret build arg/)]);
    expect(r.text).not.toContain('v'.repeat(50));
    expect(requests).toBe(0);
  });

  it('a buildspec file over 25,600 characters: names buildspec and its length, no AWS call', async () => {
    writeFileSync(path.join(job.checkout, 'buildspec.yml'), `version: 0.2\nphases:\n  build:\n    commands:\n${`      - echo ${'x'.repeat(91)}\n`.repeat(300)}`);
    const r = await runJob(jobEnv({ buildspec: 'buildspec.yml' }));
    expect(r.code).toBe(ExitCode.BadInput);
    expect(r.lines).toEqual(['ERROR: input buildspec: buildspec.yml is 31,544 characters; AWS takes at most 25,600 characters in an inline buildspec (the job sends it as buildspecOverride): move commands into a script of the repository that the buildspec runs']);
    expect(requests).toBe(0);
  });

  it('a value only the whole request shows too long (a Dockerfile stage name): names its input, no AWS call, no upload', async () => {
    const r = await runJob(jobEnv({ target: `t${'x'.repeat(4096)}` }));
    expect(r.code).toBe(ExitCode.BadInput);
    expect(r.lines).toEqual(['ERROR: input target: makes the CodeBuild variable CBI_TARGET 4,097 characters long; AWS takes at most 4,096 characters in one CodeBuild environment variable: use fewer or shorter values']);
    expect(requests).toBe(0);
  });
});

describe('the network variables', () => {
  it('an unreadable CA bundle: one line naming AWS_CA_BUNDLE, exit 2, no AWS call', async () => {
    const missing = path.join(job.checkout, 'no-such-ca.pem');
    const r = await runJob(jobEnv({}, { AWS_CA_BUNDLE: missing }));
    expect(r.code).toBe(ExitCode.BadInput);
    expect(r.lines).toEqual([`ERROR: input AWS_CA_BUNDLE: cannot read the CA bundle ${missing} (ENOENT); point it to a readable PEM file or unset it`]);
    expect(requests).toBe(0);
  });

  it('a proxy it cannot speak: one line naming HTTPS_PROXY, never its password, exit 2, no AWS call', async () => {
    const r = await runJob(jobEnv({}, { HTTPS_PROXY: 'socks5://svc:pr0xy-s3cret@proxy.corp:1080' }));
    expect(r.code).toBe(ExitCode.BadInput);
    expect(r.lines).toEqual([expect.stringMatching(/^ERROR: input HTTPS_PROXY: uses socks5:\/\/, which this job does not speak/)]);
    expect(r.text).not.toContain('s3cret');
    expect(requests).toBe(0);
  });
});
