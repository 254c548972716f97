import type { Rule } from 'eslint';

export const STAGES: string[];
export function stageOf(fromSrc: string): number | undefined;
declare const rule: Rule.RuleModule;
export default rule;
