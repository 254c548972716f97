// The fake held to AWS's own service models (stack/fake-aws/models): the validator on real operations of the pinned
// botocore models, the answers over HTTP through the real fake, the record at /_fake/violations, and the coverage of
// every AWS call the program makes.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { StartBuildCommand } from '@aws-sdk/client-codebuild';
import { GetSecretValueCommand, SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { GetParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanProgram } from '../../infra/sdk-calls';
import { awsCalls, webIdentityProviders } from '../../src/aws/permissions';
import { ModelChecks } from '../../stack/fake-aws/models/checks';
import { assertModels, loadModel, shapeOf, type ServiceModel } from '../../stack/fake-aws/models/model';
import { fromQuery } from '../../stack/fake-aws/models/query';
import { SERVICES, serviceByName, type ServiceInfo } from '../../stack/fake-aws/models/services';
import { patternRegExp, validate, validationMessage, type Problem } from '../../stack/fake-aws/models/validate';
import { STATIC_CREDENTIALS, startStack, type Stack } from './fake-support';

const codebuild = serviceByName('codebuild');
const model = (name: string) => loadModel(serviceByName(name));
/** The problems of an operation's input, as `path: message`. */
const inputProblems = (service: string, operation: string, input: unknown) => {
  const m = model(service);
  return validate(m, m.operations[operation]?.input?.shape ?? '', input, 'input');
};
const said = (problems: Problem[]) => problems.map((p) => `${p.kind} ${p.path}: ${p.rule}`);

describe('validating against the models', () => {
  it('passes a valid request', () => {
    const input = { projectName: 'proj', environmentVariablesOverride: [{ name: 'A', value: '1', type: 'PLAINTEXT' }], timeoutInMinutesOverride: 60, privilegedModeOverride: true };
    expect(inputProblems('codebuild', 'StartBuild', input)).toEqual([]);
  });

  it('catches unknown and missing members, enums, ranges, types and nested members, with AWS paths', () => {
    expect(said(inputProblems('codebuild', 'StartBuild', { bogus: 1 }))).toEqual([
      'unknown bogus: bogus is not a member of StartBuildInput',
      'constraint projectName: Member must not be null',
    ]);
    const input = { projectName: 'p', computeTypeOverride: 'HUGE', timeoutInMinutesOverride: 1, privilegedModeOverride: 'yes', environmentVariablesOverride: [{ name: 'A' }] };
    expect(said(inputProblems('codebuild', 'StartBuild', input))).toEqual([
      expect.stringMatching(/^constraint computeTypeOverride: Member must satisfy enum value set: \[BUILD_GENERAL1_SMALL, .*\]$/),
      'constraint timeoutInMinutesOverride: Member must have value greater than or equal to 5',
      'type privilegedModeOverride: STRING_VALUE can not be converted to a Boolean',
      'constraint environmentVariablesOverride.1.member.value: Member must not be null',
    ]);
  });

  it('checks list sizes, string lengths in characters, whole-value patterns and blobs', () => {
    expect(said(inputProblems('codebuild', 'BatchGetBuilds', { ids: Array.from({ length: 101 }, (_, i) => `p:${i}`) }))).toEqual(['constraint ids: Member must have length less than or equal to 100']);
    expect(said(inputProblems('codebuild', 'BatchGetBuilds', { ids: [] }))).toEqual(['constraint ids: Member must have length greater than or equal to 1']);
    // 2048 characters, 4096 UTF-16 units: within PSParameterName's max of 2048.
    expect(inputProblems('ssm', 'GetParameter', { Name: '😀'.repeat(2048) })).toEqual([]);
    expect(said(inputProblems('ssm', 'GetParameter', { Name: 'x'.repeat(2049) }))).toEqual(['constraint name: Member must have length less than or equal to 2048']);
    // [^:*]* matches a prefix of any string; AWS matches the whole value.
    expect(said(inputProblems('logs', 'GetLogEvents', { logStreamName: 'a:b' }))).toEqual(['constraint logStreamName: Member must satisfy regular expression pattern: [^:*]*']);
    const sign = { KeyId: 'alias/k', SigningAlgorithm: 'ECDSA_SHA_256' };
    expect(said(inputProblems('kms', 'Sign', { ...sign, Message: 'not base64!' }))).toEqual(['type message: STRING_VALUE can not be converted to a Blob']);
    expect(said(inputProblems('kms', 'Sign', { ...sign, Message: Buffer.alloc(4097).toString('base64') }))).toEqual(['constraint message: Member must have length less than or equal to 4096']);
    expect(inputProblems('kms', 'Sign', { ...sign, Message: Buffer.alloc(32).toString('base64') })).toEqual([]);
  });

  it('words problems as AWS does, never echoing a sensitive value and at most 100 characters of others', () => {
    const sts = model('sts');
    const { value, unknown } = fromQuery(sts, 'AssumeRoleWithWebIdentityRequest', new URLSearchParams({
      Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: `arn:${'r'.repeat(300)}`, RoleSessionName: 's', WebIdentityToken: 'abc', DurationSeconds: '60', Extra: '1',
      'PolicyArns.member.1.arn': 'arn:aws:iam::aws:policy/ReadOnlyAccess', 'PolicyArns.member.2.arn': 'arn:short',
    }));
    expect(unknown).toEqual(['Extra']);
    const message = validationMessage(validate(sts, 'AssumeRoleWithWebIdentityRequest', value, 'input'));
    expect(message).toBe(
      `4 validation errors detected: Value 's' at 'roleSessionName' failed to satisfy constraint: Member must have length greater than or equal to 2; ` +
        "Value at 'webIdentityToken' failed to satisfy constraint: Member must have length greater than or equal to 4; " +
        "Value 'arn:short' at 'policyArns.2.member.arn' failed to satisfy constraint: Member must have length greater than or equal to 20; " +
        "Value '60' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900",
    );
    const long = validate(sts, 'AssumeRoleWithWebIdentityRequest', { RoleArn: 'x'.repeat(3000), RoleSessionName: 'ok', WebIdentityToken: 'abcd' }, 'input');
    expect(validationMessage(long)).toBe(`1 validation error detected: Value '${'x'.repeat(100)}…' at 'roleArn' failed to satisfy constraint: Member must have length less than or equal to 2048`);
  });

  it('holds answers to members, types, required members and enums, not to lengths (AWS answers ids: [])', () => {
    const cb = model('codebuild');
    expect(validate(cb, 'ListBuildsForProjectOutput', { ids: [] }, 'output')).toEqual([]);
    expect(said(validate(cb, 'BatchGetBuildsOutput', { builds: [{ id: 'p:1', buildNumber: '1', buildStatus: 'DONE', extra: true }] }, 'output'))).toEqual([
      'type builds.1.member.buildNumber: STRING_VALUE can not be converted to a Long',
      expect.stringMatching(/^constraint builds\.1\.member\.buildStatus: Member must satisfy enum value set: \[SUCCEEDED, /),
      'unknown builds.1.member.extra: extra is not a member of Build',
    ]);
    expect(said(validate(model('secretsmanager'), 'GetSecretValueResponse', { Name: 'n', CreatedDate: '2024-01-01' }, 'output'))).toEqual([
      'type createdDate: STRING_VALUE can not be converted to a Timestamp',
    ]);
  });
});

describe('recording what the fake sends', () => {
  const checks = new ModelChecks();
  const record = () => checks.violations().map((v) => `${v.kind} ${v.service}:${v.operation} ${v.path}: ${v.message}`);

  it('checks JSON and XML answers, event streams and error names', async () => {
    checks.response(codebuild, 'StopBuild', { build: { id: 'p:1', buildComplete: 'no' } });
    await checks.xmlResponse(serviceByName('sts'), 'AssumeRoleWithWebIdentity', '<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>' +
      '<Credentials><AccessKeyId>ASIA1</AccessKeyId><SessionToken>t</SessionToken><Expiration>never</Expiration></Credentials>' +
      '</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>');
    const event = checks.stream(serviceByName('logs'), 'StartLiveTail');
    event('event', 'sessionUpdate', { sessionResults: [{ message: 'm', timestamp: 1 }] });
    event('event', 'sessionUpdate', { sessionMetadata: { sampled: 'no' } });
    event('event', 'sessionEnd', {});
    event('exception', 'SessionTimeoutException', { message: 'timed out' });
    checks.error(codebuild, 'StartBuild', 'InvalidInputException');
    checks.error(serviceByName('sts'), 'AssumeRoleWithWebIdentity', 'InvalidIdentityToken'); // InvalidIdentityTokenException's Query code
    checks.error(serviceByName('logs'), 'GetLogEvents', 'ThrottlingException');
    checks.error(serviceByName('ssm'), 'GetParameter', 'SecretNotFound');
    expect(record()).toEqual([
      "output codebuild:StopBuild build.buildComplete: STRING_VALUE can not be converted to a Boolean (at 'build.buildComplete')",
      "output sts:AssumeRoleWithWebIdentity credentials.expiration: STRING_VALUE can not be converted to a Timestamp (at 'credentials.expiration')",
      "output sts:AssumeRoleWithWebIdentity credentials.secretAccessKey: Value null at 'credentials.secretAccessKey' failed to satisfy constraint: Member must not be null",
      "output logs:StartLiveTail sessionUpdate.sessionMetadata.sampled: STRING_VALUE can not be converted to a Boolean (at 'sessionUpdate.sessionMetadata.sampled')",
      "output logs:StartLiveTail sessionEnd: sessionEnd is not an event of StartLiveTail's event stream",
      'error ssm:GetParameter : SecretNotFound is neither an error GetParameter lists (InternalServerError, InvalidKeyId, ParameterNotFound, ParameterVersionNotFound) nor a common AWS error',
    ]);
  });
});

describe('the fake over HTTP', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ parameters: { '/ci/p': 'v' } });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  /** A JSON 1.1 request the SDK would never send, with an Authorization header the fake accepts. */
  async function post(target: string, service: string, body: unknown): Promise<{ status: number; json: { __type?: string; message?: string } }> {
    const r = await fetch(stack.fake.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-amz-json-1.1',
        'x-amz-target': target,
        authorization: `AWS4-HMAC-SHA256 Credential=${STATIC_CREDENTIALS.accessKeyId}/20250101/us-east-1/${service}/aws4_request, SignedHeaders=host, Signature=0`,
      },
      body: JSON.stringify(body),
    });
    return { status: r.status, json: (await r.json()) as { __type?: string; message?: string } };
  }
  const errorOf = (p: Promise<unknown>) => p.then(() => ({ name: 'no error', message: '' }), (e: Error) => ({ name: e.name, message: e.message }));

  it("answers each service's validation error, and records every violation", async () => {
    expect(await errorOf(stack.codebuild.send(new StartBuildCommand({ projectName: 'proj', computeTypeOverride: 'HUGE' as never, timeoutInMinutesOverride: 9999 })))).toEqual({
      name: 'InvalidInputException',
      message: expect.stringMatching(/^2 validation errors detected: Value 'HUGE' at 'computeTypeOverride' .*; Value '9999' at 'timeoutInMinutesOverride' failed to satisfy constraint: Member must have value less than or equal to 2160$/),
    });
    expect((await errorOf(stack.logs.send(new GetLogEventsCommand({ logGroupName: '/aws/codebuild/proj', logStreamName: 'a:b' })))).name).toBe('InvalidParameterException');
    const ssm = new SSMClient({ credentials: STATIC_CREDENTIALS });
    expect((await errorOf(ssm.send(new GetParameterCommand({ Name: 'x'.repeat(2049) })))).name).toBe('ValidationException');
    const secrets = new SecretsManagerClient({ credentials: STATIC_CREDENTIALS });
    expect(await errorOf(secrets.send(new GetSecretValueCommand({ SecretId: '' })))).toEqual({
      name: 'ValidationException',
      message: "1 validation error detected: Value '' at 'secretId' failed to satisfy constraint: Member must have length greater than or equal to 1",
    });
    const form = new URLSearchParams({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: 'arn:aws:iam::000000000000:role/r', RoleSessionName: 's', WebIdentityToken: 'abcd' });
    const sts = await fetch(stack.fake.url, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form });
    expect(await sts.text()).toMatch(/<Code>ValidationError<\/Code><Message>1 validation error detected: Value &#39;s&#39; at &#39;roleSessionName&#39;/);

    expect((await stack.takeViolations()).map((v) => `${v.kind} ${v.service}:${v.operation} ${v.path}`)).toEqual([
      'input codebuild:StartBuild computeTypeOverride',
      'input codebuild:StartBuild timeoutInMinutesOverride',
      'input logs:GetLogEvents logStreamName',
      'input ssm:GetParameter name',
      'input secretsmanager:GetSecretValue secretId',
      'input sts:AssumeRoleWithWebIdentity roleSessionName',
    ]);
  });

  it('answers a value of the wrong type with SerializationException; lets unknown members through, as AWS does, but records them', async () => {
    expect(await post('Logs_20140328.GetLogEvents', 'logs', { logGroupName: '/aws/codebuild/proj', logStreamName: 's', limit: '5' })).toEqual({
      status: 400,
      json: { __type: 'SerializationException', message: "STRING_VALUE can not be converted to an Integer (at 'limit')" },
    });
    expect(await post('AmazonSSM.GetParameter', 'ssm', { Name: '/ci/p', WithDecryption: true, Verbose: true })).toMatchObject({ status: 200 });
    expect((await stack.takeViolations()).map((v) => `${v.kind} ${v.operation} ${v.path}: ${v.message}`)).toEqual([
      "input GetLogEvents limit: STRING_VALUE can not be converted to an Integer (at 'limit')",
      "input GetParameter verbose: Verbose is not a member of GetParameterRequest (at 'verbose'; AWS ignores unknown members)",
    ]);
  });

  it('keeps violations when faults are cleared: only the end of a test file reads them', async () => {
    await post('AmazonSSM.GetParameter', 'ssm', { Name: '/ci/p', Extra: 1 });
    await stack.control.clearFaults();
    await stack.control.resetCalls();
    expect((await stack.control.violations()).at(-1)).toMatchObject({ kind: 'input', service: 'ssm', operation: 'GetParameter', path: 'extra' });
    expect(await stack.takeViolations()).toHaveLength(1);
  });
});

describe('models for every AWS call of the program', () => {
  const repoRoot = resolve(__dirname, '../..');
  /** lib-storage's Upload sends these S3 operations (src/aws/permissions.ts). */
  const UPLOAD = ['PutObject', 'CreateMultipartUpload', 'UploadPart', 'CompleteMultipartUpload', 'AbortMultipartUpload'];

  let scanned: ReturnType<typeof scanProgram> | undefined;
  /** The package `name` comes from in the first of `files` that makes the call (infra/sdk-calls.ts's scan, made once). */
  function importedFrom(name: string, files: readonly string[]): string | undefined {
    const program = (scanned ??= scanProgram(repoRoot));
    return files.map((f) => program.get(f)?.find((u) => u.name === name)?.module).find(Boolean);
  }

  /** service:operation for each call, from `<Name>Command` and the SDK package it comes from. */
  function calledOperations(): { call: string; service?: ServiceInfo; operations: string[]; problem?: string }[] {
    const calls = Object.entries(awsCalls).map(([name, call]) => {
      const pkg = importedFrom(name, call.usedIn);
      if (name === 'Upload' && pkg === '@aws-sdk/lib-storage') return { call: name, service: serviceByName('s3'), operations: UPLOAD };
      const service = SERVICES.find((s) => s.sdkPackage === pkg);
      if (!service || !name.endsWith('Command')) {
        return { call: name, operations: [], problem: `imported from ${pkg ?? 'nowhere in its usedIn files'}, which stack/fake-aws/models/services.ts does not map to a model` };
      }
      return { call: name, service, operations: [name.slice(0, -'Command'.length)] };
    });
    // fromWebToken and fromTokenFile call STS AssumeRoleWithWebIdentity, as the command does.
    const sts = webIdentityProviders.map((name) => ({ call: name, service: serviceByName('sts'), operations: ['AssumeRoleWithWebIdentity'] }));
    return [...calls, ...sts];
  }

  it('maps every call to operations that have a model', () => {
    const missing = calledOperations().flatMap(({ call, service, operations, problem }) => {
      if (problem || !service) return [`${call}: ${problem}`];
      const model = loadModel(service);
      return operations.filter((op) => !model.operations[op]).map((op) => `${call}: no operation ${op} in ${service.name} ${service.version}`);
    });
    expect(missing).toEqual([]);
    expect(calledOperations().map((c) => `${c.service?.name}:${c.operations.join('+')}`)).toEqual(expect.arrayContaining(['s3:HeadObject', `s3:${UPLOAD.join('+')}`, 'ecr:GetAuthorizationToken', 'sts:AssumeRoleWithWebIdentity']));
  });

  it('compiles every pattern of the inputs the program sends, and routes by the targets of the models', () => {
    const patterns = (m: ServiceModel, name: string, seen = new Set<string>()): string[] => {
      if (seen.has(name)) return [];
      seen.add(name);
      const shape = shapeOf(m, name);
      const refs = shape.type === 'structure' ? Object.values(shape.members) : shape.type === 'list' ? [shape.member] : shape.type === 'map' ? [shape.key, shape.value] : [];
      return [...(shape.type === 'string' && shape.pattern ? [shape.pattern] : []), ...refs.flatMap((r) => patterns(m, r.shape, seen))];
    };
    for (const { service, operations } of calledOperations()) {
      if (!service) continue;
      const m = loadModel(service);
      for (const op of operations) for (const p of patterns(m, m.operations[op]?.input?.shape ?? '')) expect(() => patternRegExp(p), p).not.toThrow();
    }
    for (const s of SERVICES) {
      const { metadata } = loadModel(s);
      if (s.served.protocol === 'json') expect(s.served.targetPrefix).toBe(`${metadata.targetPrefix}.`);
      if (s.served.protocol === 'query') expect(metadata.protocol).toBe('query');
    }
  });

  it('names ensure-deps.sh when the models are not installed', () => {
    const empty = mkdtempSync(join(tmpdir(), 'cbi-models-'));
    const before = process.env['CBI_MODELS_DIR'];
    process.env['CBI_MODELS_DIR'] = empty;
    try {
      expect(() => assertModels()).toThrow(`AWS's model of codebuild 2016-10-06 is missing at ${empty}/data/codebuild/2016-10-06/service-2.json: run \`bash scripts/ensure-deps.sh\``);
      expect(() => loadModel(serviceByName('sts'))).toThrow(/scripts\/ensure-deps\.sh/);
    } finally {
      if (before === undefined) delete process.env['CBI_MODELS_DIR'];
      else process.env['CBI_MODELS_DIR'] = before;
      rmSync(empty, { recursive: true, force: true });
    }
  });
});
