/**
 * One packer run in its own process, so its peak RSS can be measured alone (bench/pack.ts runs this under
 * /usr/bin/time -v). Usage: child.ts <ours|jszip|baseline> <contextDir> <outFile>. Prints {"ms": …}:
 * the time from listing to the archive being on disk, without process start-up.
 */
import { createWriteStream, readFileSync } from 'node:fs';
import JSZip from 'jszip';
import { listContext } from '../src/context';
import { packContext } from '../src/zip';
import { memoryOutput } from '../test/helpers/output';

async function packWithJszip(contextDir: string, outFile: string): Promise<void> {
  const entries = await listContext(contextDir, memoryOutput());
  const zip = new JSZip();
  const date = new Date(1980, 0, 1);
  for (const e of entries) {
    if (e.kind === 'directory') zip.file(e.path, null, { dir: true, date, unixPermissions: e.mode });
    else if (e.kind === 'file') zip.file(e.path, readFileSync(e.absPath), { date, unixPermissions: e.mode });
  }
  await new Promise<void>((resolve, reject) => {
    zip
      .generateNodeStream({ type: 'nodebuffer', streamFiles: true, compression: 'DEFLATE', compressionOptions: { level: 6 }, platform: 'UNIX' })
      .on('error', reject)
      .pipe(createWriteStream(outFile))
      .on('finish', resolve)
      .on('error', reject);
  });
}

async function main(): Promise<void> {
  const [tool, contextDir, outFile] = process.argv.slice(2);
  if (!tool || !contextDir || !outFile) throw new Error('usage: child.ts <ours|jszip|baseline> <contextDir> <outFile>');
  const start = performance.now();
  if (tool === 'ours') await packContext(await listContext(contextDir, memoryOutput()), outFile);
  else if (tool === 'jszip') await packWithJszip(contextDir, outFile);
  else if (tool !== 'baseline') throw new Error(`unknown tool ${tool}`);
  process.stdout.write(`${JSON.stringify({ ms: performance.now() - start })}\n`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
