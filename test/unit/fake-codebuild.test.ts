import { join } from 'node:path';
import { ListBuildsForProjectCommand, StartBuildCommand, StopBuildCommand, type StartBuildCommandInput } from '@aws-sdk/client-codebuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildspec, commandOutput, phaseList, runBuild, startStack, waitForBuild, writtenPid, type Stack } from './fake-support';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({
    phaseDelayMs: 50,
    projects: [{ name: 'proj', source: { type: 'NO_SOURCE', buildspec: buildspec({ build: ['echo default'] }) } }],
    parameters: { '/ci/param': 'param-value' },
    secrets: { 'ci/secret': 'plain-secret', 'ci/json': '{"token":"json-secret"}' },
  });
});
afterAll(async () => {
  await stack?.stop();
});

async function errorName(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'no error',
    (e: Error) => e.name,
  );
}

describe('fake CodeBuild API', () => {
  it('lists a project\'s builds newest first (or oldest first on request), and refuses an unknown project', async () => {
    const first = (await stack.codebuild.send(new StartBuildCommand({ projectName: 'proj' }))).build?.id;
    const second = (await stack.codebuild.send(new StartBuildCommand({ projectName: 'proj' }))).build?.id;
    const newest = (await stack.codebuild.send(new ListBuildsForProjectCommand({ projectName: 'proj' }))).ids ?? [];
    expect(newest.slice(0, 2)).toEqual([second, first]);
    const oldest = (await stack.codebuild.send(new ListBuildsForProjectCommand({ projectName: 'proj', sortOrder: 'ASCENDING' }))).ids ?? [];
    expect(oldest.slice(-2)).toEqual([first, second]);
    expect(await errorName(stack.codebuild.send(new ListBuildsForProjectCommand({ projectName: 'nope' })))).toBe('ResourceNotFoundException');
    await stack.codebuild.send(new StopBuildCommand({ id: first }));
    await stack.codebuild.send(new StopBuildCommand({ id: second }));
  });

  it('answers ResourceNotFoundException for an unknown project and InvalidInputException for bad overrides', async () => {
    expect(await errorName(stack.codebuild.send(new StartBuildCommand({ projectName: 'nope' })))).toBe('ResourceNotFoundException');
    expect(await errorName(stack.codebuild.send(new StartBuildCommand({ projectName: 'proj', timeoutInMinutesOverride: 1 })))).toBe('InvalidInputException');
    expect(await errorName(stack.codebuild.send(new StartBuildCommand({ projectName: 'proj', computeTypeOverride: 'HUGE' as never })))).toBe('InvalidInputException');
    // Both break CodeBuild's model: the fake records them, so that a test sending them by mistake fails.
    expect((await stack.takeViolations()).map((v) => `${v.kind} ${v.operation} ${v.path}`)).toEqual([
      'input StartBuild timeoutInMinutesOverride',
      'input StartBuild computeTypeOverride',
    ]);
  });

  it('refuses a variable over 4,096 characters and an inline buildspec over 25,600, as CodeBuild does', async () => {
    const send = (input: Partial<StartBuildCommandInput>) => stack.codebuild.send(new StartBuildCommand({ projectName: 'proj', ...input })).catch((e: Error) => e);
    const variable = (value: string) => ({ environmentVariablesOverride: [{ name: 'NOTES', value, type: 'PLAINTEXT' as const }] });
    expect(await send(variable('n'.repeat(4097)))).toMatchObject({ name: 'InvalidInputException', message: 'EnvironmentVariable should be at most 4096 characters' });
    // A buildspec of exactly `length` characters, in few long commands: the build at the limit runs each in a shell.
    const spec = (length: number) => {
      const short = buildspec({ build: Array.from({ length: 25 }, () => 'echo x') });
      const padding = length - short.length;
      return buildspec({ build: Array.from({ length: 25 }, (_, i) => `echo x${'x'.repeat(Math.floor(padding / 25) + (i < padding % 25 ? 1 : 0))}`) });
    };
    expect(spec(25_601)).toHaveLength(25_601);
    expect(await send({ buildspecOverride: spec(25_601) })).toMatchObject({ name: 'InvalidInputException', message: 'Buildspec should be at most 25600 characters' });
    // At the limits, both are taken.
    expect(spec(25_600)).toHaveLength(25_600);
    const build = await send({ ...variable('n'.repeat(4096)), sourceTypeOverride: 'NO_SOURCE', buildspecOverride: spec(25_600) });
    expect(build).toMatchObject({ build: { buildStatus: 'IN_PROGRESS' } });
    await waitForBuild(stack.codebuild, (build as { build?: { id?: string } }).build?.id ?? '');
  });

  it('validates cacheOverride and fleetOverride as CodeBuild does, and reports them on the build', async () => {
    const layerCache = { type: 'LOCAL' as const, modes: ['LOCAL_DOCKER_LAYER_CACHE' as const] };
    expect(await errorName(stack.codebuild.send(new StartBuildCommand({ projectName: 'proj', cacheOverride: layerCache })))).toBe('InvalidInputException');
    expect(await errorName(stack.codebuild.send(new StartBuildCommand({ projectName: 'proj', fleetOverride: { fleetArn: 'fleet-1' } })))).toBe('InvalidInputException');
    const fleetArn = 'arn:aws:codebuild:us-east-1:000000000000:fleet/warm-hosts:0f0e0d0c';
    const { build } = await stack.codebuild.send(
      new StartBuildCommand({ projectName: 'proj', privilegedModeOverride: true, cacheOverride: layerCache, fleetOverride: { fleetArn } }),
    );
    expect(build?.cache).toEqual(layerCache);
    expect(build?.environment?.fleet).toEqual({ fleetArn });
    await waitForBuild(stack.codebuild, build?.id ?? '');
  });

  it('returns the build in SUBMITTED without log location, which appears from PROVISIONING on', async () => {
    const { build } = await stack.codebuild.send(new StartBuildCommand({ projectName: 'proj' }));
    expect(build?.id).toMatch(/^proj:[0-9a-f-]{36}$/);
    expect(build?.arn).toBe(`arn:aws:codebuild:us-east-1:000000000000:build/${build?.id}`);
    expect(build?.currentPhase).toBe('SUBMITTED');
    expect(build?.buildStatus).toBe('IN_PROGRESS');
    expect(build?.startTime).toBeInstanceOf(Date);
    expect(build?.logs?.groupName).toBeUndefined();
    const provisioning = await waitForBuild(stack.codebuild, build?.id ?? '', (b) => b.currentPhase === 'PROVISIONING' || b.buildComplete === true);
    expect(provisioning.logs?.groupName).toBe('/aws/codebuild/proj');
    expect(provisioning.logs?.streamName).toBe(build?.id?.split(':')[1]);
    const done = await waitForBuild(stack.codebuild, build?.id ?? '');
    expect(done.buildComplete).toBe(true);
    expect(done.endTime).toBeInstanceOf(Date);
    expect(done.phases?.[0]).toMatchObject({ phaseType: 'SUBMITTED', phaseStatus: 'SUCCEEDED', durationInSeconds: 0, contexts: [{ statusCode: '', message: '' }] });
    expect(await commandOutput(stack.logs, done)).toEqual(['default']);
  });

  it('is idempotent per token: same parameters → same build, different parameters → IdempotentParameterMismatchException', async () => {
    const input = { projectName: 'proj', idempotencyToken: 'tok-1', environmentVariablesOverride: [{ name: 'A', value: '1' }] };
    const first = await stack.codebuild.send(new StartBuildCommand(input));
    const again = await stack.codebuild.send(new StartBuildCommand(input));
    expect(again.build?.id).toBe(first.build?.id);
    const changed = { ...input, environmentVariablesOverride: [{ name: 'A', value: '2' }] };
    expect(await errorName(stack.codebuild.send(new StartBuildCommand(changed)))).toBe('IdempotentParameterMismatchException');
    const other = await stack.codebuild.send(new StartBuildCommand({ ...input, idempotencyToken: 'tok-2' }));
    expect(other.build?.id).not.toBe(first.build?.id);
    expect(other.build?.buildNumber).toBe((first.build?.buildNumber ?? 0) + 1);
  });

  it('applies environment overrides and records them (secret values redacted) in /_fake/builds', async () => {
    const b = await runBuild(stack, {
      computeTypeOverride: 'BUILD_GENERAL1_LARGE',
      imageOverride: 'custom/image:1',
      environmentTypeOverride: 'ARM_CONTAINER',
      privilegedModeOverride: true,
      queuedTimeoutInMinutesOverride: 30,
      buildspecOverride: buildspec({ build: ['echo "$PLAIN $PARAM $SECRET $JSON"'] }),
      environmentVariablesOverride: [
        { name: 'PLAIN', value: 'plain', type: 'PLAINTEXT' },
        { name: 'PARAM', value: '/ci/param', type: 'PARAMETER_STORE' },
        { name: 'SECRET', value: 'ci/secret', type: 'SECRETS_MANAGER' },
        { name: 'JSON', value: 'ci/json:token', type: 'SECRETS_MANAGER' },
      ],
    });
    expect(b.environment).toMatchObject({ computeType: 'BUILD_GENERAL1_LARGE', image: 'custom/image:1', type: 'ARM_CONTAINER', privilegedMode: true });
    expect(b.queuedTimeoutInMinutes).toBe(30);
    // CodeBuild masks values that came from Parameter Store / Secrets Manager in the log.
    expect(await commandOutput(stack.logs, b)).toEqual(['plain *** *** ***']);
    const recorded = (await stack.control.builds()).find((r) => r.id === b.id);
    expect(recorded?.env).toMatchObject({ PLAIN: 'plain', PARAM: '***', SECRET: '***', JSON: '***' });
    expect(JSON.stringify(recorded)).not.toMatch(/param-value|plain-secret|json-secret/);
  });

  it('fails DOWNLOAD_SOURCE when a PARAMETER_STORE or SECRETS_MANAGER variable cannot be resolved', async () => {
    for (const [type, value, code] of [
      ['PARAMETER_STORE', '/missing', 'Decrypted Variables Error'],
      ['SECRETS_MANAGER', 'missing', 'Secrets Manager Error'],
    ] as const) {
      const b = await runBuild(stack, { environmentVariablesOverride: [{ name: 'X', value, type }] });
      expect(b.buildStatus).toBe('FAILED');
      expect(phaseList(b)).toContain('DOWNLOAD_SOURCE:FAILED');
      expect(b.phases?.find((p) => p.phaseType === 'DOWNLOAD_SOURCE')?.contexts?.[0]?.statusCode).toBe(code);
    }
  });

  it('StopBuild kills a running `sleep 30` build: status STOPPED, BUILD phase STOPPED, process gone', async () => {
    const pidFile = join(stack.workDir, 'stop.pid');
    const { build } = await stack.codebuild.send(
      new StartBuildCommand({
        projectName: 'proj',
        environmentVariablesOverride: [{ name: 'PID_FILE', value: pidFile }],
        buildspecOverride: buildspec({ build: ['echo $$ > "$PID_FILE"; sleep 30'], post_build: ['echo post'] }),
      }),
    );
    const id = build?.id ?? '';
    await waitForBuild(stack.codebuild, id, (b) => b.currentPhase === 'BUILD');
    await waitForBuild(stack.codebuild, id, () => writtenPid(pidFile) !== undefined);
    const stopped = await stack.codebuild.send(new StopBuildCommand({ id }));
    expect(stopped.build?.id).toBe(id);
    const done = await waitForBuild(stack.codebuild, id);
    expect(done.buildStatus).toBe('STOPPED');
    expect(phaseList(done).slice(-3)).toEqual(['BUILD:STOPPED', 'FINALIZING:SUCCEEDED', 'COMPLETED:-']);
    const pid = writtenPid(pidFile);
    expect(pid).toBeGreaterThan(1);
    expect(() => process.kill(pid as number, 0)).toThrow();
    expect(await errorName(stack.codebuild.send(new StopBuildCommand({ id: 'proj:unknown' })))).toBe('ResourceNotFoundException');
  });
});
