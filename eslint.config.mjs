import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import stageOrder from './scripts/eslint-stage-order.mjs';

export default tseslint.config(
  { ignores: ['dist/', 'node_modules/', '.stack/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    files: ['src/**/*.ts'],
    plugins: { local: { rules: { 'stage-order': stageOrder } } },
    rules: { 'local/stage-order': 'error' },
  },
);
