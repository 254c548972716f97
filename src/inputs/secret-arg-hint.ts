/**
 * A hint where the change of 2.0.0 bites: secret build args arrive as BuildKit secrets, so a Dockerfile that
 * still reads one through `ARG NAME` silently gets an empty value. The job names each such `ARG` line, and the
 * two fixes, before anything is sent to AWS.
 *
 * The Dockerfile is read the way BuildKit's parser reads it (moby/buildkit frontend/dockerfile/parser):
 * parser directives at the top (`# escape=`), comments, line continuations, heredoc bodies of RUN, COPY and
 * ADD, instructions in any case, and ARG's `name[=value]` words.
 */
// Hand-written: dockerfile-ast (with the vscode-languageserver packages it needs) adds 88 KB to the 0.90 MB bundle of a 1.0 MB budget.
import path from 'node:path';
import { readRegularFile, toPosix } from './checkout-paths';
import type { Settings } from './settings';
import { shown } from '../shared/shown';

/** An `ARG` instruction declaring one of the secret build args. */
interface SecretArgFinding {
  /** 1-based line where the instruction starts. */
  line: number;
  name: string;
}

// BuildKit's parser directive: `# key=value` in the file's first lines, up to the first line that is not one.
const DIRECTIVE = /^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$/;
const KNOWN_DIRECTIVES = new Set(['syntax', 'escape', 'check']);
const HEREDOC_INSTRUCTIONS = new Set(['run', 'copy', 'add']);
// A shell word opening a heredoc: optional file descriptor, `<<` or `<<-`, and the delimiter word.
const HEREDOC = /^(\d*)<<(-?)([^<]*)$/;

const trimLeft = (s: string) => s.replace(/^[ \t]+/, '');

/**
 * The `ARG` instructions of `dockerfile` that declare one of `names` (case-sensitive, as ARG names are), in
 * file order; an instruction declaring two of them gives two findings.
 */
export function findSecretArgs(dockerfile: string, names: readonly string[]): SecretArgFinding[] {
  const wanted = new Set(names);
  const findings: SecretArgFinding[] = [];
  if (wanted.size === 0) return findings;
  const lines = dockerfile.replace(/^\uFEFF/, '').split(/\r?\n/);
  // The file's last newline ends its last line; it does not start another.
  if (lines.at(-1) === '') lines.pop();

  let escape = '\\';
  let i = 0;
  for (; i < lines.length; i += 1) {
    const line = trimLeft(lines[i] ?? '');
    if (i === 0 && line.startsWith('#!')) continue;
    const directive = DIRECTIVE.exec(line);
    const key = directive?.[1]?.toLowerCase() ?? '';
    // A comment that is not a known directive ends them, as an empty line or an instruction does.
    if (!KNOWN_DIRECTIVES.has(key)) break;
    if (key === 'escape' && (directive?.[2] === '`' || directive?.[2] === '\\')) escape = directive[2];
  }
  // A continuation: the escape character, then only blanks, at the end of the line.
  const continuation = new RegExp(`${escape === '\\' ? '\\\\' : '`'}[ \\t]*$`);
  const isComment = (raw: string) => trimLeft(raw).startsWith('#');

  // Directive lines are comments too: parsing starts again at the top.
  for (i = 0; i < lines.length; i += 1) {
    const first = lines[i] ?? '';
    if (isComment(first)) continue;
    const start = i + 1;
    let text = trimLeft(first);
    let ended = !continuation.test(text);
    if (!ended) text = text.replace(continuation, '');
    if (ended && text.trim() === '') continue;
    // Comments and empty lines inside a continued instruction are skipped; the instruction goes on after them.
    while (!ended && i + 1 < lines.length) {
      i += 1;
      const next = lines[i] ?? '';
      if (isComment(next) || next.trim() === '') continue;
      ended = !continuation.test(next);
      text += ended ? next : next.replace(continuation, '');
    }
    const [, keyword = '', rest = ''] = /^(\S+)\s*([\s\S]*)$/.exec(text) ?? [];
    const instruction = keyword.toLowerCase();
    if (instruction === 'arg') {
      for (const word of shellWords(rest, escape)) {
        if (word.startsWith('--')) continue;
        const name = word.split('=', 1)[0] ?? '';
        if (wanted.has(name)) findings.push({ line: start, name });
      }
    } else if (HEREDOC_INSTRUCTIONS.has(instruction) && text.includes('<<') && !isJsonArray(rest)) {
      // Each heredoc's body follows the instruction, up to a line that is its delimiter: none of it is an instruction.
      for (const heredoc of heredocs(text)) {
        while (i + 1 < lines.length) {
          i += 1;
          const body = lines[i] ?? '';
          if ((heredoc.chomp ? body.replace(/^\t+/, '') : body) === heredoc.name) break;
        }
      }
    }
  }
  return findings;
}

/** The heredocs a RUN, COPY or ADD line opens, in order (BuildKit splits the line into shell words, quotes kept). */
function heredocs(line: string): { name: string; chomp: boolean }[] {
  const docs: { name: string; chomp: boolean }[] = [];
  for (const word of shellWords(line, '\\')) {
    const m = HEREDOC.exec(word);
    const name = m?.[3] ? unquote(m[3]) : undefined;
    if (m && name) docs.push({ name, chomp: m[2] === '-' });
  }
  return docs;
}

/** `text` split at blanks outside quotes; quotes and escapes are kept in the words. */
function shellWords(text: string, escape: string): string[] {
  const words: string[] = [];
  let word = '';
  let quote = '';
  let inWord = false;
  for (let k = 0; k < text.length; k += 1) {
    const c = text[k] ?? '';
    if (c === escape && quote !== "'" && k + 1 < text.length) {
      word += c + (text[k + 1] ?? '');
      k += 1;
      inWord = true;
    } else if (quote) {
      word += c;
      if (c === quote) quote = '';
    } else if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      if (c === '"' || c === "'") quote = c;
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** A heredoc delimiter without its quotes and backslashes (`"EOF"`, `'EOF'`, `E\OF` are all EOF). */
function unquote(word: string): string {
  let out = '';
  let quote = '';
  for (let k = 0; k < word.length; k += 1) {
    const c = word[k] ?? '';
    if (quote) {
      if (c === quote) quote = '';
      else if (c === '\\' && quote === '"' && k + 1 < word.length) out += word[++k] ?? '';
      else out += c;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '\\' && k + 1 < word.length) out += word[++k] ?? '';
    else out += c;
  }
  return out;
}

/** The exec form (`RUN ["sh", "-c", "…"]`), which has no heredocs. */
function isJsonArray(args: string): boolean {
  if (!args.trimStart().startsWith('[')) return false;
  try {
    const parsed: unknown = JSON.parse(args);
    return Array.isArray(parsed) && parsed.every((a) => typeof a === 'string');
  } catch {
    return false;
  }
}

/**
 * The warnings to print before StartBuild: one line per `ARG` of the Dockerfile that declares a secret build
 * arg passed as a BuildKit secret. None when there are no secret build args, when they go in as build args,
 * with the user's own buildspec (it decides how `CBI_ARG_<NAME>` reaches its build; the job cannot know), or
 * when the Dockerfile cannot be read (the input checks report that).
 */
export function secretArgHints(s: Settings): string[] {
  if (s.secretBuildArgs.length === 0 || s.buildkit.secretsAs === 'build-arg' || s.buildspec !== undefined || !s.contextDir) return [];
  const file = path.join(s.contextDir, s.dockerfile);
  let text: string;
  try {
    text = readRegularFile(file);
  } catch {
    return [];
  }
  // readSettings resolved the context inside the checkout, and the Dockerfile inside the context.
  const where = shown(toPosix(path.relative(s.checkoutDir, file)));
  // Names passed readSettings's variable-name check ([A-Za-z_][A-Za-z0-9_]*): printed as they are, like ARG.
  return findSecretArgs(
    text,
    s.secretBuildArgs.map((a) => a.name),
  ).map(
    ({ line, name }) =>
      `The Dockerfile ${where} declares ARG ${name} on line ${line}, but secret build arg ${name} arrives as a BuildKit secret, ` +
      `not a build arg, so that ARG does not get it (it is empty, or its default): read it with RUN --mount=type=secret,id=${name},env=${name} …, ` +
      `or set secret_build_args_as: build-arg to pass it as before (visible in the image's history).`,
  );
}
