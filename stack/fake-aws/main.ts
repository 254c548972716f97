// CLI: npx tsx stack/fake-aws/main.ts --config <options.json> [--ready-file <file>]
// Prints {"url", "issuer", "signingKeys"} (and writes it to --ready-file) once listening; SIGTERM/SIGINT stop running builds and exit.
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { startFakeAws, type FakeAwsOptions } from './server';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' }, 'ready-file': { type: 'string' } } });
  if (!values.config) throw new Error('usage: main.ts --config <options.json> [--ready-file <file>]');
  const options = JSON.parse(readFileSync(values.config, 'utf8')) as FakeAwsOptions;
  const fake = await startFakeAws(options);
  const ready = JSON.stringify({ url: fake.url, issuer: fake.issuer, signingKeys: fake.signingKeys });
  if (values['ready-file']) writeFileSync(values['ready-file'], ready + '\n');
  process.stdout.write(ready + '\n');
  const shutdown = () => {
    fake.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);
}

main().catch((e: unknown) => {
  process.stderr.write(`fake-aws: ${(e as Error).message}\n`);
  process.exit(2);
});
