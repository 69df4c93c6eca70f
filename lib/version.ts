/**
 * The project's version, the one constant every part prints (`--version`,
 * the start-up log line, metrics). package.json's `version` is the source: a
 * test (test/lib/version.test.ts) fails when the two differ, so a release
 * bump changes both in the same commit.
 */
export const VERSION = "0.1.0";
