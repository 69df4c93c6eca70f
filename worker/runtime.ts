/**
 * The Node.js versions coresight-worker runs on. Kept free of imports, so
 * that worker/cli.ts can check the version before any module that needs a
 * newer Node is loaded (and fails with a SyntaxError or a missing zlib
 * export instead of a sentence).
 *
 * 22.15 is the floor: zstd in node:zlib, and the engine ranges of the AWS
 * SDK (Node >= 22 from 2027) and @nats-io/* (>= 22). Node 24 LTS is what the
 * project is built, tested and shipped on. package.json's `engines` says the
 * same (a test keeps the two equal).
 */
export const MIN_NODE = { major: 22, minor: 15 } as const;

/** Null when `version` (like process.versions.node, "24.22.3") can run the worker; otherwise the one line to print. */
export function unsupportedNode(version: string): string | null {
  const [major = 0, minor = 0] = version.split(".").map((p) => Number.parseInt(p, 10));
  if (major > MIN_NODE.major || (major === MIN_NODE.major && minor >= MIN_NODE.minor)) return null;
  return `coresight-worker needs Node.js >= ${MIN_NODE.major}.${MIN_NODE.minor} (Node 24 LTS recommended); this is Node ${version}`;
}
