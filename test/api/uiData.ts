/**
 * Data for the crash browser's tests, made the way production makes it: the
 * fixture cores of build/fixtures analyzed for real, the worker pipeline's
 * way (lib/analyze.ts analyzeDump: modules resolved by build-id, then gdb),
 * each reported to the API's root as CoreDog does and its result PUT back
 * as the worker does (resultDocument), through a real API service.
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { eventContext, parseEvent } from "../../lib/events.js";
import type { Result } from "../../lib/result.js";
import { resultDocument } from "../../lib/results/document.js";
import { analyzeDump } from "../../lib/analyze.js";
import { requireFixture, type FixtureName } from "../helpers/fixtures.js";
import { WORKER_TOKEN, agentEvent, call, postAsAgent } from "./helpers.js";

/** Cores whose crash frames are in fixtures/crashes (the stripped one is read from its symbol-less binary). */
export const UI_FIXTURES: FixtureName[] = ["null-deref", "abort-assert", "cxx-uncaught", "div-zero", "builtin-trap", "sigbus", "multithread", "rust-panic", "stripped"];

const analyzed = new Map<string, Promise<Result>>();

/** One real analysis per fixture, shared by every test of the process. */
export function analysisOf(name: FixtureName): Promise<Result> {
  let r = analyzed.get(name);
  if (!r) {
    const f = requireFixture(name);
    r = (async () => {
      const workDir = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-ui-analysis-"));
      try {
        return await analyzeDump({ core: f.core, exe: f.exe, workDir });
      } finally {
        await fs.rm(workDir, { recursive: true, force: true });
      }
    })();
    analyzed.set(name, r);
  }
  return r;
}

export interface Stored {
  fixture: string;
  analysisId: string;
  result: Result;
}

/**
 * Reports one occurrence of `name`'s crash and stores its result. `mutate`
 * may change the result before it is PUT (a hostile function name).
 */
export async function storeOccurrence(
  apiUrl: string,
  name: FixtureName,
  opts: { n: number; pod?: string; namespace?: string; image?: string; node?: string; mutate?: (r: Result) => Result } = { n: 1 },
): Promise<Stored> {
  const event = agentEvent({
    id: `coredog-1765567205-${name}-${opts.n}`,
    fileUrl: `http://127.0.0.1:9/dumps/core.${name}.${opts.n}?X-Amz-Signature=secret`,
    pod: opts.pod ?? `${name}-pod-${opts.n}`,
    namespace: opts.namespace ?? "prod",
    image: opts.image ?? `registry/${name}:1.0`,
    node: opts.node ?? `node-${opts.n % 3}`,
  });
  const posted = await postAsAgent(apiUrl, event);
  if (posted.status !== 202) throw new Error(`ingest answered ${posted.status}: ${JSON.stringify(posted.json)}`);
  const analysisId = posted.json.analysis_id as string;
  const base = structuredClone(await analysisOf(name));
  const result = opts.mutate ? opts.mutate(base) : base;
  const doc = resultDocument(result, eventContext(parseEvent(JSON.stringify(event))), { analysis_id: analysisId, attempt: 1, worker: "test-worker:1" });
  const put = await call(apiUrl, "PUT", `/api/v1/analyses/${analysisId}`, { token: WORKER_TOKEN, body: doc });
  if (put.status !== 201) throw new Error(`PUT answered ${put.status}: ${JSON.stringify(put.json)}`);
  return { fixture: name, analysisId, result };
}
