/**
 * One packer run in its own process, so its peak RSS is its own. Usage: child.ts <contextDir> <outFile>.
 * Prints {"ms": …, "rssMB": …}: the time from listing to the archive being on disk (without process
 * start-up) and the process's peak RSS (worker threads included).
 *
 * As in the job (src/commands/build.ts), the worker threads start before the context is listed, so they
 * come up while it is. PACK_WORKERS=n sets their number (0: all on this thread).
 */
import { FilePool } from '../src/context/pack-files';
import { listContext } from '../src/context/listing';
import { packContext } from '../src/context/zip';
import { memoryOutput } from '../test/helpers/output';

async function main(): Promise<void> {
  const [contextDir, outFile] = process.argv.slice(2);
  if (!contextDir || !outFile) throw new Error('usage: child.ts <contextDir> <outFile>');
  const start = performance.now();
  const pool = process.env.PACK_WORKERS ? new FilePool(Number(process.env.PACK_WORKERS)) : new FilePool();
  await packContext(await listContext(contextDir, memoryOutput()), outFile, { pool });
  const ms = performance.now() - start;
  process.stdout.write(`${JSON.stringify({ ms, rssMB: process.resourceUsage().maxRSS / 1024 })}\n`);
  await pool.close();
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
