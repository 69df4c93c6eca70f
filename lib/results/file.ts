/**
 * The file sink: `{RESULTS_DIR}/{analysis_id}.json`, one document per
 * analysis, replaced whole on a redelivery.
 *
 * Written atomically: a temp file in the same directory, fsync'd, then
 * renamed over the final name, so a reader (or a crash) sees either the old
 * document or the new one, never half of one. Temp names start with "." and
 * end in ".tmp" so a glob for `*.json` never picks them up.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import { TransientError } from "../errors.js";
import { errorOf } from "../retry.js";
import type { ResultSink } from "./sink.js";

/** Writes `data` to `file` atomically (temp + fsync + rename), creating the directory. */
export async function writeFileAtomic(file: string, data: string | Uint8Array): Promise<void> {
  const dir = path.dirname(file);
  await fs.mkdir(dir, { recursive: true });
  const tmp = path.join(dir, `.${path.basename(file)}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
  try {
    const fh = await fs.open(tmp, "wx", 0o644);
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await fs.rename(tmp, file);
  } catch (e: unknown) {
    await fs.rm(tmp, { force: true }).catch(() => undefined);
    throw e;
  }
  // Persist the rename itself; not every file system lets a directory be fsync'd.
  try {
    const dh = await fs.open(dir, "r");
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
  } catch {
    /* best effort */
  }
}

/** The results directory as a ResultSink. A write error (disk full, permissions) is transient. */
export function createFileSink(resultsDir: string, deps: { logger?: Logger } = {}): ResultSink {
  const log = deps.logger?.child({ sink: "file" });
  return {
    name: "file",
    async store(analysisId, doc) {
      const file = path.join(resultsDir, `${analysisId}.json`);
      try {
        await writeFileAtomic(file, JSON.stringify(doc, null, 2) + "\n");
      } catch (e: unknown) {
        const err = errorOf(e);
        log?.warn({ analysis_id: analysisId, file, err: err.message }, "could not write the result file");
        throw new TransientError("result_store_failed", `could not write ${file}: ${err.message}`, { cause: err });
      }
      log?.debug({ analysis_id: analysisId, file }, "result written");
    },
  };
}
