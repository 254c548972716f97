/**
 * Reading the repository's Markdown and judging its relative links as GitLab renders them: used by
 * test/unit/docs.test.ts (every .md file) and test/unit/catalog.test.ts (catalog-resource.yml's links).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { repoRoot } from './gitlab-ci-local';

/** A file of the repository (path relative to its root), as text. */
export const readRepo = (path: string): string => readFileSync(join(repoRoot, path), 'utf8');

/** The docs/*.md pages, as repository paths (docs/x.md), sorted. */
export const docsPages: string[] = readdirSync(join(repoRoot, 'docs'))
  .filter((f) => f.endsWith('.md'))
  .sort()
  .map((f) => `docs/${f}`);

/** A fenced code block (``` or ~~~ up to the same fence), which holds neither links nor headings. */
const FENCED_CODE = /^(```|~~~)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm;

/** The text without fenced code blocks and inline code spans, which hold no links. */
export function prose(text: string): string {
  return text.replace(FENCED_CODE, '').replace(/(`+)[\s\S]*?\1/g, '');
}

/** GitLab's heading anchor: lower case, punctuation except - and _ dropped, spaces → -, runs of - → one. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\p{M}\p{Pc}\- ]/gu, '')
    .replace(/ /g, '-')
    .replace(/-{2,}/g, '-');
}

/** The anchors of a Markdown text's headings; a repeated heading gets -1, -2… as on GitLab. */
export function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  const withoutFences = text.replace(FENCED_CODE, '');
  for (const m of withoutFences.matchAll(/^#{1,6}[ \t]+(.+?)[ \t#]*$/gm)) {
    const base = anchorOf(m[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    anchors.add(n === 0 ? base : `${base}-${n}`);
  }
  return anchors;
}

/** `[text](target)` links and `[label]: target` definitions outside code, as written. */
export function linksOf(text: string): string[] {
  const body = prose(text);
  const inline = [...body.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)].map((m) => m[1]!);
  const defined = [...body.matchAll(/^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)].map((m) => m[1]!);
  return [...inline, ...defined];
}

/**
 * The broken relative links of `file` (a path in the repository) whose text is `text`: a target that
 * does not exist, or an anchor that names no heading of the .md file it points to.
 */
export function brokenLinks(file: string, text: string, readFile: (path: string) => string | undefined): string[] {
  const broken: string[] = [];
  for (const link of linksOf(text)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(link) || link.startsWith('//')) continue; // https:, mailto:…
    const hash = link.indexOf('#');
    const target = decodeURIComponent(hash < 0 ? link : link.slice(0, hash));
    const anchor = hash < 0 ? undefined : link.slice(hash + 1);
    const path = target === '' ? file : normalize(join(dirname(file), target)).replace(/\/$/, '');
    if (path.startsWith('..')) {
      broken.push(`${link} (leaves the repository)`);
      continue;
    }
    const content = readFile(path);
    if (content === undefined) {
      broken.push(`${link} (no file ${path})`);
      continue;
    }
    if (anchor !== undefined && path.endsWith('.md') && !anchorsOf(content).has(anchor)) {
      broken.push(`${link} (no heading #${anchor} in ${path})`);
    }
  }
  return broken;
}

/** File text for .md files, '' for other files and directories that exist, undefined otherwise. */
export function repoFile(path: string): string | undefined {
  const full = join(repoRoot, path);
  if (!existsSync(full)) return undefined;
  return statSync(full).isFile() && path.endsWith('.md') ? readFileSync(full, 'utf8') : '';
}
