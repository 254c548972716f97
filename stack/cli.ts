/**
 * npx tsx stack/cli.ts up [--dir D] [--no-docker] [--phase-delay-ms N]   start a detached stack, print its env (and on
 *                                                                        stderr its KMS signing keys)
 *     [--tls] [--proxy] [--proxy-only]                                   the fake AWS and s3rver over https (private CA), tinyproxy
 *                                                                        in front of them, and nothing served but through it
 *     [--secret NAME=VALUE]… [--parameter NAME=VALUE]…                   seed the fake's Secrets Manager / Parameter Store
 *     [--auth-registry]                                                  and a registry that requires a user (stack/auth-registry)
 *     [--job-token TOKEN]                                                that also takes gitlab-ci-token:TOKEN, as GitLab's registry
 * npx tsx stack/cli.ts down [--dir D]                                    stop it (by the PIDs in D/pids)
 * npx tsx stack/cli.ts env [--dir D]                                     print `export` lines for a shell
 * npx tsx stack/cli.ts token [--dir D] [--claims JSON]                   print an OIDC token for a group/hello job
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DEFAULT_STACK_DIR } from './paths';
import { attach, readStack, shellExports, startStack, stopStack, type StackInfo } from './stack';

const USAGE =
  'usage: stack/cli.ts up|down|env|token [--dir DIR] [--no-docker] [--phase-delay-ms N] [--tls] [--proxy] [--proxy-only] [--secret NAME=VALUE]… [--parameter NAME=VALUE]… [--auth-registry] [--job-token TOKEN] [--claims JSON]';

/** `NAME=VALUE` items as a record; the value may contain `=`. */
function pairs(items: string[] | undefined, flag: string): Record<string, string> {
  return Object.fromEntries(
    (items ?? []).map((item) => {
      const eq = item.indexOf('=');
      if (eq < 1) throw new Error(`--${flag} takes NAME=VALUE\n${USAGE}`);
      return [item.slice(0, eq), item.slice(eq + 1)];
    }),
  );
}

function running(dir: string): StackInfo {
  const info = readStack(dir);
  if (!info) throw new Error(`no local stack runs in ${dir}: start one with \`npx tsx stack/cli.ts up --dir ${dir}\``);
  return info;
}

async function main(argv: string[]): Promise<void> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      dir: { type: 'string' },
      'no-docker': { type: 'boolean' },
      'phase-delay-ms': { type: 'string' },
      claims: { type: 'string' },
      secret: { type: 'string', multiple: true },
      parameter: { type: 'string', multiple: true },
      'auth-registry': { type: 'boolean' },
      'job-token': { type: 'string' },
      tls: { type: 'boolean' },
      proxy: { type: 'boolean' },
      'proxy-only': { type: 'boolean' },
    },
  });
  const dir = path.resolve(values.dir ?? DEFAULT_STACK_DIR);
  switch (positionals[0]) {
    case 'up': {
      const started = Date.now();
      const stack = await startStack({
        dir,
        docker: !values['no-docker'],
        phaseDelayMs: Number(values['phase-delay-ms'] ?? 0),
        secrets: pairs(values.secret, 'secret'),
        parameters: pairs(values.parameter, 'parameter'),
        // A user of this stack only: the fake's Secrets Manager holds it for builds (STACK_AUTH_REGISTRY_SECRET).
        ...(values['auth-registry'] || values['job-token'] ? { authRegistry: { username: 'builder', password: randomBytes(18).toString('base64url') } } : {}),
        // Jobs then log in with it as with a job token: CI_REGISTRY=$STACK_AUTH_REGISTRY CI_JOB_TOKEN=TOKEN.
        ...(values['job-token'] ? { authRegistryJobToken: values['job-token'] } : {}),
        tls: values.tls ?? false,
        proxy: values.proxy ?? false,
        proxyOnly: values['proxy-only'] ?? false,
        detached: true,
      });
      console.error(`local stack up in ${Date.now() - started} ms (state in ${dir}; stop with: npx tsx stack/cli.ts down --dir ${dir})`);
      for (const key of stack.signingKeys) console.error(`KMS signing key alias/${key.alias}: ${key.keyArn} (public key ${key.publicKeyPem})`);
      if (stack.proxyUrl) console.error(`tinyproxy on ${stack.proxyUrl}${stack.proxyOnly ? '; the fake AWS and s3rver reset connections that do not come through it' : ''}`);
      console.log(shellExports(stack));
      return;
    }
    case 'down':
      await stopStack(dir);
      return;
    case 'env':
      console.log(shellExports(running(dir)));
      return;
    case 'token': {
      const claims = values.claims ? (JSON.parse(values.claims) as Record<string, unknown>) : {};
      console.log(await attach(running(dir)).signToken(claims));
      return;
    }
    default:
      throw new Error(USAGE);
  }
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? e.message : String(e));
    process.exit(1);
  },
);
