// An ESLint rule: src/ imports flow one way, from the job's later stages to its earlier ones (docs/development.md,
// "Source layout"). A module may import its own folder and the stages listed before it, never a later one.
import path from 'node:path';

/** src/ from the bottom up: each entry is a folder (`name/`) or a file at the top. */
export const STAGES = ['shared/', 'inputs/', 'context/', 'aws/', 'registry/', 'build/', 'follow/', 'sign/', 'report/', 'aws-part.ts', 'commands/', 'main.ts', 'index.ts'];

/**
 * The index in STAGES of a path relative to src/ (with or without its extension); undefined outside src/,
 * -1 inside it but in no stage.
 */
export function stageOf(fromSrc) {
  if (fromSrc.startsWith('..') || path.isAbsolute(fromSrc)) return undefined;
  const parts = fromSrc.split(path.sep);
  const entry = parts.length > 1 ? `${parts[0]}/` : `${parts[0].replace(/\.[cm]?[jt]s$/, '')}.ts`;
  return STAGES.indexOf(entry);
}

export default {
  meta: {
    type: 'problem',
    docs: { description: 'an import in src/ must not run back up from an earlier stage to a later one' },
    schema: [],
    messages: {
      backUp: '{{from}} (stage {{fromStage}}) imports {{to}} (stage {{toStage}}), a later stage: move the shared part down to {{fromStage}} or an earlier stage, or the caller up. Order: {{order}}.',
      noStage: '{{path}} is in no stage of src/: put it in one, or add its folder to STAGES in scripts/eslint-stage-order.mjs at its place in the order.',
    },
  },
  create(context) {
    const src = path.resolve(context.cwd, 'src');
    const file = path.relative(src, context.filename);
    const from = stageOf(file);
    if (from === undefined) return {};
    const check = (node) => {
      const spec = node?.value;
      if (typeof spec !== 'string' || !spec.startsWith('.')) return;
      const target = path.relative(src, path.resolve(path.dirname(context.filename), spec));
      const to = stageOf(target);
      if (from < 0 || to === undefined || to <= from) return;
      context.report({ node, messageId: 'backUp', data: { from: file, fromStage: STAGES[from], to: target, toStage: STAGES[to], order: STAGES.join(' → ') } });
    };
    return {
      Program: (node) => {
        if (from < 0) context.report({ node, messageId: 'noStage', data: { path: file } });
      },
      ImportDeclaration: (n) => check(n.source),
      ExportNamedDeclaration: (n) => check(n.source),
      ExportAllDeclaration: (n) => check(n.source),
      ImportExpression: (n) => check(n.source),
      // `import x = require('…')` and `typeof import('…')`, which TypeScript also resolves.
      TSImportEqualsDeclaration: (n) => n.moduleReference.type === 'TSExternalModuleReference' && check(n.moduleReference.expression),
      TSImportType: (n) => check(n.argument?.literal ?? n.argument),
    };
  },
};
