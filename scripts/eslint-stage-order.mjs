// An ESLint rule: src/ imports flow one way, from the job's later stages to its earlier ones (docs/development.md,
// "Source layout"). A module may import its own folder and the stages listed before it, never a later one.
import path from 'node:path';

/** src/ from the bottom up: each entry is a folder (`name/`) or a file at the top. */
export const STAGES = ['shared/', 'inputs/', 'context/', 'aws/', 'registry/', 'build/', 'follow/', 'report/', 'aws-part.ts', 'commands/', 'main.ts', 'index.ts'];

/** The index in STAGES of a path relative to src/, or -1 outside src/ or the list. */
export function stageOf(fromSrc) {
  if (fromSrc.startsWith('..')) return -1;
  const top = fromSrc.split(path.sep)[0];
  return STAGES.findIndex((s) => (s.endsWith('/') ? s === `${top}/` : s === fromSrc || s === `${fromSrc}.ts`));
}

export default {
  meta: {
    type: 'problem',
    docs: { description: 'an import in src/ must not run back up from an earlier stage to a later one' },
    schema: [{ type: 'object', properties: { src: { type: 'string' } }, additionalProperties: false }],
    messages: {
      backUp: "{{from}} (stage {{fromStage}}) imports {{to}} (stage {{toStage}}), a later stage: move the shared part down to {{fromStage}} or an earlier stage, or the caller up. Order: {{order}}.",
    },
  },
  create(context) {
    const src = path.resolve(context.options[0]?.src ?? 'src');
    const file = path.relative(src, context.filename);
    const from = stageOf(file);
    if (from < 0) return {};
    const check = (node) => {
      const spec = node?.value;
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const target = path.relative(src, path.resolve(path.dirname(context.filename), spec));
      const to = stageOf(target);
      if (to <= from) return;
      context.report({ node, messageId: 'backUp', data: { from: file, fromStage: STAGES[from], to: target, toStage: STAGES[to], order: STAGES.join(' → ') } });
    };
    return {
      ImportDeclaration: (n) => check(n.source),
      ExportNamedDeclaration: (n) => check(n.source),
      ExportAllDeclaration: (n) => check(n.source),
      ImportExpression: (n) => check(n.source),
    };
  },
};
