import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CodeBuildClient, StartBuildCommand } from '@aws-sdk/client-codebuild';
import { afterAll, describe, expect, it } from 'vitest';
import { STATIC_CREDENTIALS, waitForBuild, writtenPid } from './fake-support';

const dir = mkdtempSync(join(tmpdir(), 'fake-aws-cli-'));
let child: ChildProcess | undefined;
afterAll(() => {
  if (child?.pid !== undefined && child.exitCode === null) process.kill(child.pid, 'SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

describe('fake-aws CLI', () => {
  it('writes the ready file, serves CodeBuild, and on SIGTERM stops running builds and exits 0', async () => {
    const readyFile = join(dir, 'ready.json');
    const pidFile = join(dir, 'sleep.pid');
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ workDir: join(dir, 'work'), phaseDelayMs: 10, projects: [{ name: 'p', source: { type: 'NO_SOURCE', buildspec: `version: 0.2\nphases:\n  build:\n    commands:\n      - echo $$ > ${pidFile}; sleep 30\n` } }] }));
    child = spawn(process.execPath, ['--import', 'tsx', 'stack/fake-aws/main.ts', '--config', join(dir, 'config.json'), '--ready-file', readyFile], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise<number | null>((resolve) => child?.on('exit', (code) => resolve(code)));
    // Until the file holds its JSON (it exists, empty, for a moment); tsx takes a while on a busy machine.
    const ready = () => (existsSync(readyFile) && readFileSync(readyFile, 'utf8').trim() !== '');
    for (let i = 0; i < 1000 && !ready(); i++) await new Promise((r) => setTimeout(r, 50));
    const { url } = JSON.parse(readFileSync(readyFile, 'utf8')) as { url: string };
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(readFileSync(join(dir, 'work', 'oidc-issuer'), 'utf8')).toBe(`${url}/oidc`);

    const cb = new CodeBuildClient({ endpoint: url, region: 'us-east-1', credentials: STATIC_CREDENTIALS });
    const { build } = await cb.send(new StartBuildCommand({ projectName: 'p' }));
    await waitForBuild(cb, build?.id ?? '', () => writtenPid(pidFile) !== undefined);
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    const pid = writtenPid(pidFile);
    expect(pid).toBeGreaterThan(1);
    expect(() => process.kill(pid as number, 0)).toThrow();
  });
});
