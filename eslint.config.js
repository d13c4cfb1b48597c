// neostandard, the style of the @fastify plugins, with its TypeScript rules
import neostandard from 'neostandard'

export default [
  ...neostandard({
    ts: true,
    ignores: ['dist/**', 'coverage/**', 'bench/aspnetcore/**', 'test/interop/dotnet/**', 'test/.readme-examples-*/**', '**/bin/**', '**/obj/**']
  }),
  {
    files: ['**/*.ts'],
    rules: {
      // `void promise` marks a promise whose outcome is handled elsewhere (a floating send)
      'no-void': ['error', { allowAsStatement: true }],
      // A `let` read by a teardown registered before its one assignment cannot be a const
      'prefer-const': ['error', { destructuring: 'all', ignoreReadBeforeAssign: true }],
      // A leading underscore names a value that is there for its position only
      '@typescript-eslint/no-unused-vars': ['error', { varsIgnorePattern: '^_', argsIgnorePattern: '^_', destructuredArrayIgnorePattern: '^_', ignoreRestSiblings: true }]
    }
  },
  {
    // Type tests: values exist only to be checked by the compiler
    files: ['types/**/*.test-d.ts'],
    rules: { '@typescript-eslint/no-unused-vars': 'off' }
  }
]
