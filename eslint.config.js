// Lint for the mistakes tsc lets through (shared/STYLE.md): a promise nobody
// awaits (an unhandled rejection kills a worker mid-job), a value import used
// only as a type (verbatimModuleSyntax keeps it at run time, loading modules
// for nothing), and a throw of something that is not an Error (no stack, no
// code, and the settle decision reads error classes). Run by `make lint`,
// part of `make test`.
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["dist/**", "build/**", "node_modules/**", ".tools/**", "demo-output/**", "coverage/**", "**/*.js", "**/*.mjs", "**/*.cjs"] },
  {
    files: ["**/*.ts"],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "@typescript-eslint": tseslint.plugin },
    linterOptions: { reportUnusedDisableDirectives: "error" },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      "@typescript-eslint/only-throw-error": "error",
      "@typescript-eslint/no-unused-vars": ["error", { args: "none", caughtErrors: "none", ignoreRestSiblings: true }],
    },
  },
);
