/**
 * `signature explain` on a result: the signature recomputed from what the
 * result holds (the crash thread's frames, the module map, who sent the
 * signal), frame by frame, under a given set of grouping rules. With the
 * rules the analysis ran with it reproduces the result's own signature
 * (a test checks it on every fixture); with a new rules file it shows what
 * the file would change before an operator deploys it.
 */
import type { Result } from "../result.js";
import type { GroupingRules } from "./groupingRules.js";
import { explainSignature, type SignatureExplanation, type SignatureOptions } from "./signature.js";

/** The crash thread's signature explained; null when the result has no crash thread. */
export function explainResult(r: Result, rules: GroupingRules): (SignatureExplanation & { crash_thread: number }) | null {
  const crash = r.threads.find((t) => t.crashed);
  if (!crash) return null;
  const modules = (r.modules ?? []).filter((m) => m.start !== null && m.end !== null);
  const moduleAt: SignatureOptions["moduleAt"] = (address) => {
    const a = BigInt(address);
    return modules.find((m) => a >= BigInt(m.start!) && a < BigInt(m.end!));
  };
  return {
    crash_thread: crash.number,
    ...explainSignature(crash, {
      rules,
      moduleAt,
      executable: executableOf(r),
      sentByAnotherProcess: r.signal?.sender?.kind === "process",
    }),
  };
}

/** The executable's module path: the module the core's executable names (`./app` is `/srv/app`'s tail). */
function executableOf(r: Result): string | null {
  const exe = r.core?.executable;
  if (!exe) return null;
  const tail = exe.replace(/^(\.\/)+/, "");
  return (r.modules ?? []).find((m) => m.path === exe || m.path.endsWith(`/${tail}`))?.path ?? null;
}
