import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isAlive } from '../../stack/process';
import { buildspec, commandOutput, logMessages, phaseList, putZip, runBuild, startStack, type Stack } from './fake-support';

let stack: Stack;
beforeAll(async () => {
  stack = await startStack({ minuteMs: 200 });
});
afterAll(async () => {
  await stack?.stop();
});

const NO_SOURCE = { sourceTypeOverride: 'NO_SOURCE' } as const;

describe('fake CodeBuild runs the buildspec', () => {
  it('runs the phases in order and logs command output with CodeBuild agent lines', async () => {
    const b = await runBuild(stack, { ...NO_SOURCE, buildspecOverride: buildspec({ install: ['echo in-install'], build: ['echo out; echo err >&2'] }) });
    expect(b.buildStatus).toBe('SUCCEEDED');
    expect(phaseList(b)).toEqual([
      'SUBMITTED:SUCCEEDED', 'QUEUED:SUCCEEDED', 'PROVISIONING:SUCCEEDED', 'DOWNLOAD_SOURCE:SUCCEEDED', 'INSTALL:SUCCEEDED',
      'PRE_BUILD:SUCCEEDED', 'BUILD:SUCCEEDED', 'POST_BUILD:SUCCEEDED', 'UPLOAD_ARTIFACTS:SUCCEEDED', 'FINALIZING:SUCCEEDED', 'COMPLETED:-',
    ]);
    const log = await logMessages(stack.logs, b);
    expect(log.every((m) => m.endsWith('\n'))).toBe(true);
    expect(log).toContainEqual(expect.stringMatching(/^\[Container\] \d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d\.\d{3} Entering phase BUILD\n$/));
    expect(log).toContainEqual(expect.stringMatching(/Running command echo out; echo err >&2\n$/));
    expect(log).toContainEqual(expect.stringMatching(/Phase complete: BUILD State: SUCCEEDED\n$/));
    expect(await commandOutput(stack.logs, b)).toEqual(['in-install', 'out', 'err']);
  });

  it('keeps one shell state across commands and phases: variables, cwd and functions', async () => {
    const b = await runBuild(stack, {
      ...NO_SOURCE,
      environmentVariablesOverride: [{ name: 'GONE', value: 'set' }],
      buildspecOverride: buildspec({
        install: ['PLAIN=kept', 'export EXPORTED=also', 'mkdir -p sub && cd sub', 'greet() { echo "hi $1"; }', 'unset GONE'],
        build: ['echo "$PLAIN $EXPORTED $(basename "$PWD") ${GONE:-unset}"', 'greet there', 'bash -c \'echo "child sees ${EXPORTED:-nothing} ${PLAIN:-nothing}"\''],
      }),
    });
    expect(await commandOutput(stack.logs, b)).toEqual(['kept also sub unset', 'hi there', 'child sees also nothing']);
  });

  it('lets background processes started by one command outlive it (as `nohup dockerd &` does)', async () => {
    const b = await runBuild(stack, {
      ...NO_SOURCE,
      buildspecOverride: buildspec({ install: ['sleep 30 & echo $! > bg.pid'], build: ['kill -0 "$(cat bg.pid)" && echo still running'] }),
    });
    expect(await commandOutput(stack.logs, b)).toEqual(['still running']);
  });

  it("gives each build a temporary directory of its own, as each CodeBuild build has its own /tmp", async () => {
    const spec = buildspec({ build: ['mktemp'] });
    const [first, second] = await Promise.all([runBuild(stack, { ...NO_SOURCE, buildspecOverride: spec }), runBuild(stack, { ...NO_SOURCE, buildspecOverride: spec })]);
    const dirs = await Promise.all([first!, second!].map(async (b) => dirname((await commandOutput(stack.logs, b))[0] ?? '')));
    expect(dirs[0]).not.toBe(dirs[1]);
    for (const [i, b] of [first!, second!].entries()) expect(dirs[i]).toBe(join(stack.workDir, 'builds', b.logs?.streamName ?? '?', 'tmp'));
  });

  it('exports env variables (buildspec, overrides, shell-set) when the build ends', async () => {
    const spec = buildspec({ build: ['DIGEST=sha256:abc', 'export FROM_EXPORT=x'] }, 'env:\n  variables:\n    FROM_SPEC: spec\n  exported-variables:\n    - DIGEST\n    - FROM_SPEC\n    - FROM_OVERRIDE\n    - FROM_EXPORT\n    - NEVER_SET');
    const b = await runBuild(stack, { ...NO_SOURCE, buildspecOverride: spec, environmentVariablesOverride: [{ name: 'FROM_OVERRIDE', value: 'o', type: 'PLAINTEXT' }] });
    expect(b.exportedEnvironmentVariables).toEqual([
      { name: 'DIGEST', value: 'sha256:abc' },
      { name: 'FROM_SPEC', value: 'spec' },
      { name: 'FROM_OVERRIDE', value: 'o' },
      { name: 'FROM_EXPORT', value: 'x' },
      { name: 'NEVER_SET', value: '' },
    ]);
  });

  it('gives StartBuild overrides precedence over buildspec variables and sets CODEBUILD_* variables', async () => {
    const spec = buildspec({ build: ['echo "$WHO $CODEBUILD_BUILD_ID $CODEBUILD_SRC_DIR $AWS_REGION $FROM_OPTIONS"'] }, 'env:\n  variables:\n    WHO: spec');
    const b = await runBuild(stack, { ...NO_SOURCE, buildspecOverride: spec, environmentVariablesOverride: [{ name: 'WHO', value: 'override' }] });
    const [line] = await commandOutput(stack.logs, b);
    expect(line?.split(' ').slice(0, 2)).toEqual(['override', b.id]);
    expect(line).toMatch(/\/src us-east-1 $/);
  });

  it('a failed INSTALL skips to FINALIZING and fails the build', async () => {
    const b = await runBuild(stack, { ...NO_SOURCE, buildspecOverride: buildspec({ install: ['false', 'echo not-reached'], build: ['echo no'] }) });
    expect(b.buildStatus).toBe('FAILED');
    expect(phaseList(b).slice(3)).toEqual(['DOWNLOAD_SOURCE:SUCCEEDED', 'INSTALL:FAILED', 'FINALIZING:SUCCEEDED', 'COMPLETED:-']);
    const install = b.phases?.find((p) => p.phaseType === 'INSTALL');
    expect(install?.contexts).toEqual([{ statusCode: 'COMMAND_EXECUTION_ERROR', message: 'Error while executing command: false. Reason: exit status 1' }]);
    expect(await commandOutput(stack.logs, b)).toEqual([]);
  });

  it('a failed BUILD still runs POST_BUILD (with CODEBUILD_BUILD_SUCCEEDING=0) and UPLOAD_ARTIFACTS', async () => {
    const b = await runBuild(stack, {
      ...NO_SOURCE,
      buildspecOverride: buildspec({ build: { commands: ['exit 3', 'echo skipped'], finally: ['echo finally $CODEBUILD_BUILD_SUCCEEDING'] }, post_build: ['echo post $CODEBUILD_BUILD_SUCCEEDING'] }),
    });
    expect(b.buildStatus).toBe('FAILED');
    expect(phaseList(b).slice(6, 9)).toEqual(['BUILD:FAILED', 'POST_BUILD:SUCCEEDED', 'UPLOAD_ARTIFACTS:SUCCEEDED']);
    expect(await commandOutput(stack.logs, b)).toEqual(['finally 0', 'post 0']);
  });

  it('on-failure: CONTINUE goes on to the next phase but the build still fails', async () => {
    const b = await runBuild(stack, { ...NO_SOURCE, buildspecOverride: buildspec({ install: { 'on-failure': 'CONTINUE', commands: ['false'] }, build: ['echo built'] }) });
    expect(b.buildStatus).toBe('FAILED');
    expect(phaseList(b)).toContain('INSTALL:FAILED');
    expect(phaseList(b)).toContain('BUILD:SUCCEEDED');
    expect(await commandOutput(stack.logs, b)).toEqual(['built']);
  });

  it('a failing finally command fails a phase whose commands succeeded', async () => {
    const b = await runBuild(stack, { ...NO_SOURCE, buildspecOverride: buildspec({ pre_build: { commands: ['true'], finally: ['false'] }, build: ['echo no'] }) });
    expect(phaseList(b)).toContain('PRE_BUILD:FAILED');
    expect(phaseList(b)).not.toContain('BUILD:SUCCEEDED');
  });

  it('unpacks an S3 zip source keeping modes and symlinks, and reads buildspec.yml from it', async () => {
    const location = await putZip(stack.s3, 'ctx/a.zip', [
      { name: 'buildspec.yml', data: buildspec({ build: ['test -x tool.sh && test -L link && test ! -x data.txt', './link', 'cat dir/data.txt'] }) },
      { name: 'tool.sh', data: '#!/bin/sh\necho tool ran\n', mode: 0o100755 },
      { name: 'link', link: 'tool.sh' },
      { name: 'dir/data.txt', data: 'data\n' },
    ]);
    const b = await runBuild(stack, { sourceTypeOverride: 'S3', sourceLocationOverride: location });
    expect(b.buildStatus).toBe('SUCCEEDED');
    expect(await commandOutput(stack.logs, b)).toEqual(['tool ran', 'data']);
  });

  it('fails DOWNLOAD_SOURCE with CLIENT_ERROR for a missing S3 object and YAML_FILE_ERROR for a bad buildspec', async () => {
    const missing = await runBuild(stack, { sourceTypeOverride: 'S3', sourceLocationOverride: 'sources/nope.zip' });
    expect(phaseList(missing).slice(3)).toEqual(['DOWNLOAD_SOURCE:FAILED', 'FINALIZING:SUCCEEDED', 'COMPLETED:-']);
    expect(missing.phases?.[3]?.contexts?.[0]?.statusCode).toBe('CLIENT_ERROR');
    const bad = await runBuild(stack, { ...NO_SOURCE, buildspecOverride: 'version: 0.2\nphases:\n  build:\n    commands:\n      - a: b\n' });
    expect(bad.buildStatus).toBe('FAILED');
    expect(bad.phases?.[3]?.contexts?.[0]?.statusCode).toBe('YAML_FILE_ERROR');
  });

  it('times out a build that runs past its timeout and kills its processes (minuteMs shortened for the test)', async () => {
    const pidFile = join(stack.workDir, 'timeout.pid');
    const b = await runBuild(stack, {
      ...NO_SOURCE,
      timeoutInMinutesOverride: 5,
      environmentVariablesOverride: [{ name: 'PID_FILE', value: pidFile }],
      buildspecOverride: buildspec({ build: ['sleep 60 & echo $! > "$PID_FILE"; wait'] }),
    });
    expect(b.buildStatus).toBe('TIMED_OUT');
    expect(phaseList(b)).toContain('BUILD:TIMED_OUT');
    expect(isAlive(Number(readFileSync(pidFile, 'utf8')))).toBe(false);
  });
});
