/**
 * The component end to end: a consumer pipeline includes templates/build.yml at the current commit,
 * gitlab-ci-local runs the build job on the shell executor against the local stack (the real dist/index.js,
 * verified against the template's pinned sha256), and a later job takes the digest from the dotenv report.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Stack } from '../../stack/stack';
import { runOnStack, SELF_COMPONENT, stackInputs, type StackRun } from '../helpers/gitlab-ci-local';
import { readDotenv, registryDigest } from './helpers';
import { sharedStack } from './stack-for-file';

let stack: Stack;
sharedStack((s) => (stack = s));

const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
].join(', ');

/**
 * A later job's script: prints what it got by dotenv, asks the registry for the tag's digest over its HTTP API
 * and fails unless the two agree.
 */
function checkScript(variable: string, repository: string): string[] {
  const url = `http://${stack.registry}/v2/${repository}/manifests/latest`;
  return [
    `echo "SEEN ${variable}=$${variable}"`,
    `served=$(curl -fsSI -H 'Accept: ${MANIFEST_TYPES}' '${url}' | tr -d '\\r' | sed -n 's/^docker-content-digest: //Ip')`,
    `echo "SERVED ${repository}=$served"`,
    `test -n "$${variable}" && test "$served" = "$${variable}"`,
  ];
}

/** What the check job printed on its `SEEN NAME=value` lines (`> ` marks output, not the echoed command), by NAME. */
function seen(output: string): Record<string, string> {
  return Object.fromEntries([...output.matchAll(/> SEEN (\w+)=(\S*)$/gm)].map((m) => [m[1], m[2]]));
}

const file = (run: StackRun, path: string) => join(run.dir, path);

describe('templates/build.yml through gitlab-ci-local against the local stack', () => {
  it('builds and pushes, and a later job gets the digest the registry serves by dotenv', async () => {
    const run = await runOnStack(stack, {
      include: [{ component: SELF_COMPONENT, inputs: stackInputs(stack, 'build-image', 'group/hello') }],
      'check-digest': { stage: 'test', needs: ['build-image'], script: checkScript('IMAGE_DIGEST', 'group/hello') },
    });
    try {
      const { output } = run;
      expect(run.code, output).toBe(0);
      expect(output).toMatch(/PASS\s+build-image/);
      expect(output).toMatch(/PASS\s+check-digest/);
      // The job ran the real program (the Dockerfile's RUN step is in its log), and the token stayed out of it.
      expect(output).toContain('hello from the RUN step');
      expect(output).not.toContain(run.token);

      const digest = seen(output).IMAGE_DIGEST;
      expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      const shortSha = execFileSync('git', ['rev-parse', '--short=8', 'HEAD'], { cwd: run.dir, encoding: 'utf8' }).trim();
      for (const tag of ['latest', shortSha]) {
        expect(await registryDigest(stack.registry, 'group/hello', tag), tag).toBe(digest);
      }
      const dotenv = readDotenv(file(run, '.codebuild-image/build-image/build.env'));
      expect(dotenv.IMAGE_REF).toBe(`${stack.registry}/group/hello@${digest}`);
    } finally {
      run.remove();
    }
  });

  it('keeps two includes apart: job names, report directories and prefixed dotenv names', async () => {
    const buildArgs = (greeting: string) => [`BASE_IMAGE=${stack.baseImage ?? ''}`, `GREETING=${greeting}`];
    const run = await runOnStack(stack, {
      include: [
        { component: SELF_COMPONENT, inputs: stackInputs(stack, 'build-first', 'group/first', { build_args: buildArgs('first') }) },
        { component: SELF_COMPONENT, inputs: stackInputs(stack, 'build-second', 'group/second', { build_args: buildArgs('second'), dotenv_prefix: 'SECOND_' }) },
      ],
      'check-both': {
        stage: 'test',
        needs: ['build-first', 'build-second'],
        script: [...checkScript('IMAGE_DIGEST', 'group/first'), ...checkScript('SECOND_IMAGE_DIGEST', 'group/second')],
      },
    });
    try {
      const { output } = run;
      expect(run.code, output).toBe(0);
      for (const job of ['build-first', 'build-second', 'check-both']) expect(output).toMatch(new RegExp(`PASS\\s+${job}`));

      const got = seen(output);
      expect(got.IMAGE_DIGEST).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(got.SECOND_IMAGE_DIGEST).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(got.IMAGE_DIGEST).toBe(await registryDigest(stack.registry, 'group/first', 'latest'));
      expect(got.SECOND_IMAGE_DIGEST).toBe(await registryDigest(stack.registry, 'group/second', 'latest'));
      // Different build args make different images: one report overwriting the other would show one digest twice.
      expect(got.SECOND_IMAGE_DIGEST).not.toBe(got.IMAGE_DIGEST);

      const first = readDotenv(file(run, '.codebuild-image/build-first/build.env'));
      const second = readDotenv(file(run, '.codebuild-image/build-second/build.env'));
      expect(first.IMAGE_DIGEST).toBe(got.IMAGE_DIGEST);
      expect(Object.keys(second).length).toBeGreaterThan(0);
      expect(Object.keys(second).filter((k) => !k.startsWith('SECOND_'))).toEqual([]);
      const records = ['build-first', 'build-second'].map((job) => JSON.parse(readFileSync(file(run, `.codebuild-image/${job}/build.json`), 'utf8')));
      expect(records.map((r) => r.image)).toEqual([`${stack.registry}/group/first`, `${stack.registry}/group/second`]);
      expect(records[0].buildId).not.toBe(records[1].buildId);
      // Each job's artifacts hold its own report and not the other's.
      const artifacts = (job: string, other: string) => [
        existsSync(file(run, `.gitlab-ci-local/artifacts/${job}/.codebuild-image/${job}/build.json`)),
        existsSync(file(run, `.gitlab-ci-local/artifacts/${job}/.codebuild-image/${other}`)),
      ];
      expect(artifacts('build-first', 'build-second')).toEqual([true, false]);
      expect(artifacts('build-second', 'build-first')).toEqual([true, false]);
    } finally {
      run.remove();
    }
  });
});
