import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Build } from '@aws-sdk/client-codebuild';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readBuildIds, writeBuildIds, writeReports } from '../../src/report/files';
import { annotations, buildRecord, dotenvText, type BuildRecord } from '../../src/report/record';
import { ReportError } from '../../src/shared/errors';
import { settingsFixture } from '../helpers/settings-fixture';

const DIGEST = `sha256:${'ab'.repeat(32)}`;
const REPO = '000000000000.dkr.ecr.us-east-1.amazonaws.com/group/app';
const CONSOLE = 'https://us-east-1.console.aws.amazon.com/codesuite/codebuild/000000000000/projects/shared-builder/build/shared-builder%3Aabc/?region=us-east-1';
const archive = { file: '/tmp/x.zip', sha256: 'f'.repeat(64), size: 1234, fileCount: 7, entryCount: 9 };
const upload = { bucket: 'bucket', key: `contexts/${'f'.repeat(64)}.zip`, uploaded: true };

function build(overrides: Partial<Build> = {}): Build {
  return {
    id: 'shared-builder:abc',
    arn: 'arn:aws:codebuild:us-east-1:000000000000:build/shared-builder:abc',
    buildNumber: 12,
    projectName: 'shared-builder',
    buildStatus: 'SUCCEEDED',
    buildComplete: true,
    startTime: new Date('2025-01-01T10:00:00Z'),
    endTime: new Date('2025-01-01T10:02:30Z'),
    phases: [
      { phaseType: 'SUBMITTED', phaseStatus: 'SUCCEEDED', durationInSeconds: 0 },
      { phaseType: 'BUILD', phaseStatus: 'SUCCEEDED', durationInSeconds: 120, contexts: [{ statusCode: '', message: '' }] },
      { phaseType: 'COMPLETED' },
    ],
    exportedEnvironmentVariables: [{ name: 'IMAGE_DIGEST', value: DIGEST }],
    ...overrides,
  };
}

const record = (b: Build = build(), s = settingsFixture()) => buildRecord(s, b, archive, upload, CONSOLE);

let dir: string;
beforeEach(() => {
  dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'report-')), 'reports', 'build-image');
});
afterEach(() => fs.rmSync(path.dirname(path.dirname(dir)), { recursive: true, force: true }));

describe('buildRecord', () => {
  it('collects build, image, context and phases', () => {
    expect(record()).toEqual({
      buildId: 'shared-builder:abc',
      buildArn: 'arn:aws:codebuild:us-east-1:000000000000:build/shared-builder:abc',
      buildNumber: 12,
      projectName: 'shared-builder',
      region: 'us-east-1',
      status: 'SUCCEEDED',
      startTime: '2025-01-01T10:00:00.000Z',
      endTime: '2025-01-01T10:02:30.000Z',
      phases: [
        { phase: 'SUBMITTED', status: 'SUCCEEDED', durationSeconds: 0 },
        { phase: 'BUILD', status: 'SUCCEEDED', durationSeconds: 120 },
        { phase: 'COMPLETED', status: undefined, durationSeconds: undefined },
      ],
      image: REPO,
      tags: ['abc1234'],
      digest: DIGEST,
      imageRef: `${REPO}@${DIGEST}`,
      imageUrl: `https://us-east-1.console.aws.amazon.com/ecr/repositories/private/000000000000/group/app/_/image/${DIGEST}/details?region=us-east-1`,
      context: { sha256: archive.sha256, size: 1234, fileCount: 7, bucket: 'bucket', key: upload.key, uploaded: true },
      consoleUrl: CONSOLE,
      gitlab: {
        jobUrl: 'https://gitlab.example.com/group/app/-/jobs/2002',
        pipelineUrl: 'https://gitlab.example.com/group/app/-/pipelines/1001',
        commitSha: '0123456789abcdef0123456789abcdef01234567',
      },
    });
  });

  it.each([
    ['missing', []],
    ['not a digest', [{ name: 'IMAGE_DIGEST', value: 'latest' }]],
    ['other variable', [{ name: 'DIGEST', value: DIGEST }]],
  ])('has no digest when the exported value is %s', (_n, vars) => {
    const r = record(build({ exportedEnvironmentVariables: vars }));
    expect(r.digest).toBeUndefined();
    expect(r.imageRef).toBeUndefined();
    expect(r.imageUrl).toBe('https://us-east-1.console.aws.amazon.com/ecr/repositories/private/000000000000/group/app?region=us-east-1');
  });

  it('keeps phase failure messages and links Docker Hub images', () => {
    const s = settingsFixture({ image: { registry: 'docker.io', path: 'team/app', name: 'docker.io/team/app' } });
    const r = record(build({ buildStatus: 'FAILED', phases: [{ phaseType: 'BUILD', phaseStatus: 'FAILED', contexts: [{ message: 'exit 1' }, { message: 'oops' }] }] }), s);
    expect(r.phases[0]).toEqual({ phase: 'BUILD', status: 'FAILED', durationSeconds: undefined, message: 'exit 1; oops' });
    expect(r.imageUrl).toBe('https://hub.docker.com/r/team/app');
    const other = record(build(), settingsFixture({ image: { registry: '127.0.0.1:5000', path: 'app', name: '127.0.0.1:5000/app' } }));
    expect(other.imageUrl).toBeUndefined();
  });
});

describe('writeReports', () => {
  it('writes dotenv, record and annotations for a successful build', () => {
    writeReports(dir, record(), 'API_');
    expect(fs.readFileSync(path.join(dir, 'build.env'), 'utf8')).toBe(
      [
        `API_IMAGE_DIGEST=${DIGEST}`,
        `API_IMAGE_REF=${REPO}@${DIGEST}`,
        'API_IMAGE_TAGS=abc1234',
        `API_IMAGE_REPOSITORY=${REPO}`,
        'API_CODEBUILD_BUILD_ID=shared-builder:abc',
        `API_CODEBUILD_BUILD_URL=${CONSOLE}`,
        '',
      ].join('\n'),
    );
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'build.json'), 'utf8'))).toEqual(JSON.parse(JSON.stringify(record())));
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'annotations.json'), 'utf8'))).toEqual({
      'codebuild-image': [
        { external_link: { label: 'CodeBuild build shared-builder:abc (SUCCEEDED)', url: CONSOLE } },
        { external_link: { label: `Image ${REPO}@${DIGEST}`, url: record().imageUrl } },
      ],
    });
    expect(fs.readdirSync(dir).sort()).toEqual(['annotations.json', 'build.env', 'build.json']);
  });

  it('joins tags with commas', () => {
    const r = { ...record(), tags: ['v1', 'latest'] };
    expect(dotenvText(r, '')).toContain('\nIMAGE_TAGS=v1,latest\n');
  });

  it.each([
    ['failed', build({ buildStatus: 'FAILED' })],
    ['without digest', build({ exportedEnvironmentVariables: [] })],
  ])('writes no dotenv for a build %s and removes a stale one', (_n, b) => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'build.env'), 'IMAGE_DIGEST=old\n');
    writeReports(dir, record(b), '');
    expect(fs.readdirSync(dir).sort()).toEqual(['annotations.json', 'build.json']);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'build.json'), 'utf8')).status).toBe(b.buildStatus);
  });

  it.each<[string, Partial<BuildRecord>, string]>([
    ['a space', { consoleUrl: 'https://x/a b' }, 'CODEBUILD_BUILD_URL'],
    ['a line break', { buildId: 'p:1\nX=1' }, 'CODEBUILD_BUILD_ID'],
    ['a quote', { image: 'r.io/"a"' }, 'IMAGE_REPOSITORY'],
    ['a $', { tags: ['$x'] }, 'IMAGE_TAGS'],
  ])('rejects a value with %s and writes nothing', (_n, change, name) => {
    const bad = { ...record(), ...change };
    expect(() => writeReports(dir, bad, '')).toThrow(ReportError);
    expect(() => writeReports(dir, bad, '')).toThrow(name);
    expect(fs.existsSync(dir)).toBe(false);
  });

  it('rejects an oversized file', () => {
    const huge = { ...record(), tags: Array.from({ length: 60 }, (_, i) => `tag-${i}-${'x'.repeat(100)}`) };
    expect(() => dotenvText(huge, '')).toThrow(/less than 5 KB/);
  });

  it('leaves no temporary files and replaces existing reports', () => {
    writeReports(dir, record(build({ buildStatus: 'FAILED' })), '');
    writeReports(dir, record(), '');
    expect(fs.readdirSync(dir).sort()).toEqual(['annotations.json', 'build.env', 'build.json']);
    expect(JSON.parse(fs.readFileSync(path.join(dir, 'build.json'), 'utf8')).status).toBe('SUCCEEDED');
  });
});

describe('atomic writes', () => {
  it('keeps the previous file and removes the temporary one when the rename fails', () => {
    writeBuildIds(dir, ['old:1']);
    fs.mkdirSync(path.join(dir, 'build.json'));
    expect(() => writeReports(dir, record(), '')).toThrow();
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(readBuildIds(dir)).toEqual(['old:1']);
  });
});

describe('build id file', () => {
  it('round-trips, one id a line, and is empty before a build starts', () => {
    expect(readBuildIds(dir)).toEqual([]);
    writeBuildIds(dir, ['shared-builder:abc']);
    expect(fs.readFileSync(path.join(dir, 'build-id'), 'utf8')).toBe('shared-builder:abc\n');
    expect(readBuildIds(dir)).toEqual(['shared-builder:abc']);
    writeBuildIds(dir, ['shared-builder:abc', 'shared-builder-arm64:def']);
    expect(readBuildIds(dir)).toEqual(['shared-builder:abc', 'shared-builder-arm64:def']);
    expect(fs.readdirSync(dir)).toEqual(['build-id']);
  });
});

describe('annotations', () => {
  it('links only the build when the image has no web page', () => {
    const r = { ...record() };
    delete r.imageUrl;
    expect(annotations(r)['codebuild-image']).toHaveLength(1);
  });
});
