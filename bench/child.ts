/**
 * One packer run in its own process, so its peak RSS is its own. Usage: child.ts <contextDir> <outFile>.
 * Prints {"ms": …, "rssMB": …}: the time from listing to the archive being on disk (without process
 * start-up) and the process's peak RSS (worker threads included).
 * PACK_WORKERS=n sets the number of worker threads (0: all on this thread).
 */
import { listContext } from '../src/context/listing';
import { packContext } from '../src/context/zip';
import { memoryOutput } from '../test/helpers/output';
import { peakRssKB } from './peak-rss';

async function main(): Promise<void> {
  const [contextDir, outFile] = process.argv.slice(2);
  if (!contextDir || !outFile) throw new Error('usage: child.ts <contextDir> <outFile>');
  const start = performance.now();
  const workers = process.env.PACK_WORKERS ? { workers: Number(process.env.PACK_WORKERS) } : {};
  await packContext(await listContext(contextDir, memoryOutput()), outFile, workers);
  const ms = performance.now() - start;
  process.stdout.write(`${JSON.stringify({ ms, rssMB: peakRssKB() / 1024 })}\n`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
