// @ts-check
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

// Workflow code runs in Temporal's deterministic sandbox: no Node built-ins, no store clients, no I/O.
const bannedInWorkflows = [
  ...builtinModules,
  ...builtinModules.map((m) => `node:${m}`),
  'pg',
  'slonik',
  'kafkajs',
  '@clickhouse/client',
  '@opensearch-project/opensearch',
  'minio',
  'fastify',
  'pino',
  '@temporalio/activity',
  '@temporalio/client',
  '@temporalio/worker',
];

// The layers every process stands on import nothing above them: lib/ (shared infrastructure) and
// domain/ (pure rules) never reach into activities, the API, workers, scripts, benchmarks or tests.
const upward = [
  '**/activities/**',
  '**/api/**',
  '**/workers/**',
  '**/scripts/**',
  '**/bench/**',
  '**/test/**',
];

export default tseslint.config(
  {
    ignores: [
      'node_modules/**',
      'dist/**',
      '.stack/**',
      'coverage/**',
      'eslint.config.mjs',
      'jest.config.js',
      // A three-line CommonJS loader for the sink's threads (it registers tsx); outside the TS project.
      'workers/sink/convert-thread.cjs',
    ],
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // Workflows, and the pure domain rules they decide with.
    files: ['workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: bannedInWorkflows.map((name) => ({
            name,
            message:
              'Workflow code must be deterministic: no Node built-ins, store clients or I/O (DESIGN §2).',
          })),
          patterns: [
            {
              group: ['**/lib/clients/*', '**/activities/*', '**/activities/**'],
              message: 'Workflows import activities as types only.',
              allowTypeImports: true,
            },
          ],
        },
      ],
      'no-restricted-globals': [
        'error',
        { name: 'setTimeout', message: 'Use sleep() from @temporalio/workflow.' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'Use workflow uuid4() or deterministic inputs.' },
      ],
    },
  },
  {
    files: ['lib/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ group: upward, message: 'lib/ is shared by every process: no upward imports.' }] },
      ],
    },
  },
  {
    // Pure, workflow-safe rules: what workflows may import, and nothing with I/O.
    files: ['domain/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: bannedInWorkflows.map((name) => ({
            name,
            message: 'domain/ holds pure rules that workflows import: no I/O, no Node built-ins.',
          })),
          patterns: [
            {
              group: [...upward, '**/lib/clients/**', '**/workflows/**'],
              message: 'domain/ imports only other domain rules.',
            },
          ],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'Rules are deterministic.' },
        { object: 'Date', property: 'now', message: 'Rules take the time as an input.' },
      ],
    },
  },
);
