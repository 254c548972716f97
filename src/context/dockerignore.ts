/**
 * `.dockerignore` parsing and matching, ported from moby/patternmatcher (ignorefile.ReadAll, New, compile,
 * MatchesOrParentMatches): the code current Docker and BuildKit run, and so what Docker on CodeBuild
 * applies again to the unzipped context. @balena/dockerignore ports the older moby 19.03 matcher, which
 * differs in ways that matter here: it throws on patterns containing `+` or `(`, matches case-insensitively
 * by default, and reads `**.txt` as `.txt` only in directories rather than as "any path ending in .txt".
 */
import path from 'node:path';

type MatchType = 'exact' | 'prefix' | 'suffix' | 'regexp';

export interface Pattern {
  /** The cleaned pattern without its `!`. */
  readonly text: string;
  /** True for `!` exception patterns (re-include). */
  readonly exclusion: boolean;
  readonly type: MatchType;
  matches(file: string): boolean;
}

/** Per-pattern results for a directory: pattern i matched the directory itself or one of its parents. */
export type MatchInfo = readonly boolean[];

/** Go's filepath.Clean for slash paths. */
function clean(p: string): string {
  const n = path.posix.normalize(p);
  return n.length > 1 && n.endsWith('/') ? n.slice(0, -1) : n;
}

/** ignorefile.ReadAll: one pattern per line, `#` comments, leading `/` dropped, `!` kept. */
export function readPatterns(content: string): string[] {
  const patterns: string[] = [];
  content
    .replace(/^\uFEFF/, '')
    .split(/\r?\n/)
    .forEach((line) => {
      if (line.startsWith('#')) return;
      let p = line.trim();
      if (p === '') return;
      const invert = p.startsWith('!');
      if (invert) p = p.slice(1).trim();
      if (p.length > 0) {
        p = clean(p);
        if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
      }
      patterns.push(invert ? `!${p}` : p);
    });
  return patterns;
}

const REGEXP_ESCAPE = new Set([...'.+()|{}$']);

function compile(text: string): { type: MatchType; regexp?: RegExp } {
  let re = '^';
  let type: MatchType = 'exact';
  const chars = [...text];
  for (let i = 0, k = 0; k < chars.length; i++) {
    const ch = chars[k++]!;
    if (ch === '*') {
      if (chars[k] === '*') {
        k++;
        if (chars[k] === '/') k++;
        if (k >= chars.length) {
          if (type === 'exact') type = 'prefix';
          else {
            re += '.*';
            type = 'regexp';
          }
        } else {
          re += '(.*/)?';
          type = 'regexp';
        }
        if (i === 0) type = 'suffix';
      } else {
        re += '[^/]*';
        type = 'regexp';
      }
    } else if (ch === '?') {
      re += '[^/]';
      type = 'regexp';
    } else if (REGEXP_ESCAPE.has(ch)) {
      re += `\\${ch}`;
    } else if (ch === '\\') {
      if (k >= chars.length) throw new Error('a pattern cannot end with a backslash');
      re += `\\${chars[k++]!}`;
      type = 'regexp';
    } else if (ch === '[' || ch === ']') {
      re += ch;
      type = 'regexp';
    } else {
      re += ch;
    }
  }
  return type === 'regexp' ? { type, regexp: new RegExp(`${re}$`) } : { type };
}

function newPattern(raw: string): Pattern | undefined {
  let p = raw.trim();
  if (p === '') return undefined;
  p = clean(p);
  const exclusion = p.startsWith('!');
  if (exclusion) {
    if (p.length === 1) throw new Error('illegal exclusion pattern: "!"');
    p = p.slice(1);
  }
  let compiled: ReturnType<typeof compile>;
  try {
    compiled = compile(p);
  } catch (e) {
    throw new Error(`invalid pattern "${raw}": ${(e as Error).message}`, { cause: e });
  }
  const { type, regexp } = compiled;
  const matches = (file: string): boolean => {
    switch (type) {
      case 'exact':
        return file === p;
      case 'prefix':
        return file.startsWith(p.slice(0, -2));
      case 'suffix': {
        const suffix = p.slice(2);
        return file.endsWith(suffix) || (suffix.startsWith('/') && file === suffix.slice(1));
      }
      case 'regexp':
        return regexp!.test(file);
    }
  };
  return { text: p, exclusion, type, matches };
}

const GLOB_CHARS = /[*?[\\]/;

/**
 * Whether `pattern` might match some path strictly below `dir`. Over-approximates: only a pattern whose
 * leading literal segments contradict `dir` is ruled out, so pruning on a "false" never loses a file.
 */
function couldMatchBelow(pattern: Pattern, dir: string): boolean {
  const below = `${dir}/`;
  switch (pattern.type) {
    case 'exact':
      return pattern.text.startsWith(below);
    case 'prefix': {
      const prefix = pattern.text.slice(0, -2);
      return prefix.startsWith(below) || below.startsWith(prefix);
    }
    case 'suffix':
      return true;
    case 'regexp': {
      const segs = pattern.text.split('/');
      const dirSegs = dir.split('/');
      for (let i = 0; i < dirSegs.length; i++) {
        const seg = segs[i];
        if (seg === undefined) return false;
        if (GLOB_CHARS.test(seg)) return true;
        if (seg !== dirSegs[i]) return false;
      }
      return segs.length > dirSegs.length;
    }
  }
}

/** A compiled `.dockerignore`. Paths are slash-separated and relative to the context root. */
export class Dockerignore {
  readonly patterns: Pattern[];

  /** Throws an Error naming the bad pattern. */
  constructor(patterns: string[]) {
    this.patterns = patterns.map(newPattern).filter((p): p is Pattern => p !== undefined);
  }

  /**
   * MatchesOrParentMatches, fed with the parent directory's MatchInfo so each path costs one test per
   * pattern. Returns whether `file` is excluded and the MatchInfo to pass to its children.
   */
  match(file: string, parent: MatchInfo | undefined): { excluded: boolean; info: MatchInfo } {
    let excluded = false;
    const info = this.patterns.map((p, i) => {
      const m = (parent?.[i] ?? false) || p.matches(file);
      if (m) excluded = !p.exclusion;
      return m;
    });
    return { excluded, info };
  }

  /** An excluded directory may be skipped only when no exception pattern could re-include something below it. */
  canSkipExcludedDir(dir: string, info: MatchInfo): boolean {
    return !this.patterns.some((p, i) => p.exclusion && !info[i] && couldMatchBelow(p, dir));
  }
}
