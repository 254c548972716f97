import fs from 'node:fs';
import path from 'node:path';
import { daemonScript } from './daemon-script';
import { readJson, startDaemon, waitFor, type Daemon } from './process';
import { REPO_ROOT } from './paths';
import { fakeControl } from './fake-aws/control';
import type { FakeAwsOptions } from './fake-aws/options';
import type { SigningKeyInfo } from './fake-aws/kms';

export interface Fake {
  daemon: Daemon;
  /** Base URL (http or https) for STS, CodeBuild, Logs, SSM, Secrets Manager and KMS; the OIDC issuer is `<url>/oidc`. */
  url: string;
  /** The fake KMS's signing keys, as its ready file lists them. */
  signingKeys: SigningKeyInfo[];
}

export async function startFake(dir: string, config: FakeAwsOptions): Promise<Fake> {
  const root = path.join(dir, 'fake');
  fs.mkdirSync(config.workDir, { recursive: true });
  const configFile = path.join(root, 'config.json');
  const readyFile = path.join(root, 'ready.json');
  fs.writeFileSync(configFile, JSON.stringify(config, null, 2));
  fs.rmSync(readyFile, { force: true });
  const daemon = startDaemon(
    dir,
    'fake-aws',
    process.execPath,
    [daemonScript(path.join(REPO_ROOT, 'stack', 'fake-aws', 'main.ts')), '--config', configFile, '--ready-file', readyFile],
    { cwd: REPO_ROOT },
  );
  const { url, signingKeys } = await waitFor(daemon, 'fake AWS', async () => readJson<Omit<Fake, 'daemon'>>(readyFile));
  // The control route answers in proxy-only mode too, and over TLS with the stack's CA.
  await waitFor(daemon, `fake AWS at ${url}`, async () => {
    await fakeControl(url, config.tls?.caFile).health();
    return true;
  });
  return { daemon, url, signingKeys };
}
