import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'dist-test/**', 'node_modules/**', '.cache/**', 'maskloop-demo/**'] },
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      eqeqeq: ['error', 'always', { null: 'ignore' }],
    },
  },
  {
    // Browser-safe rooms: the webview bundle and the pure code it (and every process) may import.
    files: ['webview/src/**/*.ts', 'src/masks/**/*.ts', 'src/protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          group: ['node:*', 'fs', 'path', 'os', 'child_process', 'sharp', 'vscode', '@tensorflow/*', 'onnxruntime-node', '**/io/*', '**/engine/**', '**/modelServer/*', '**/extension/**', '**/cli/*'],
          message: 'browser-safe code: no Node APIs, VS Code, TensorFlow.js, file I/O or process-specific rooms here',
        }],
      }],
    },
  },
  {
    // The browser entry (VS Code for the web): the VS Code API and browser-safe code only.
    files: ['src/web/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', {
        patterns: [{
          group: ['node:*', 'fs', 'path', 'os', 'child_process', 'sharp', '@tensorflow/*', 'onnxruntime-node', '**/io/*', '**/engine/**', '**/modelServer/*', '**/extension/**', '**/cli/*'],
          message: 'the browser entry runs where there is no Node: the VS Code API and browser-safe code only',
        }],
      }],
    },
  },
);
