/**
 * Decompression bombs, made on the fly: a few KiB that expand to far more
 * than the limit the test sets. Every way a layer is removed (download,
 * `analyze`, the symbol path) stops at MAX_DUMP_BYTES with `too_large`, and a
 * second layer is refused (`unsupported_compression`), never expanded (issue 9).
 */
import { createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import zlib from "node:zlib";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { execa } from "execa";
import { decompressFile } from "../../lib/core/decompress.js";
import { ResultSchema } from "../../lib/result.js";
import { downloadDump } from "../../lib/storage/download.js";
import { analyzeDump } from "../../lib/analyze.js";
import { analyzeCommand, type AnalyzeIo } from "../../worker/commands/analyze.js";

const MiB = 1024 * 1024;
const LIMIT = 1 * MiB;
/** What the bombs expand to: 64 times the limit. */
const EXPANDED = 64 * MiB;

function zeros(bytes: number): Readable {
  const chunk = Buffer.alloc(MiB);
  return Readable.from(
    (function* () {
      for (let left = bytes; left > 0; left -= chunk.length) yield left >= chunk.length ? chunk : chunk.subarray(0, left);
    })(),
  );
}

let tmp: string;
let gzBomb: string;
let zstBomb: string;
let gzZstBomb: string;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "hostile-bomb-"));
  gzBomb = path.join(tmp, "bomb.gz");
  await pipeline(zeros(EXPANDED), zlib.createGzip({ level: 9 }), createWriteStream(gzBomb));
  zstBomb = path.join(tmp, "bomb.zst");
  await execa("zstd", ["-q", "-c", "-19"], { input: Buffer.alloc(EXPANDED), stdout: { file: zstBomb } });
  // gzip around zstd: the outer layer is tiny, the inner one the bomb.
  gzZstBomb = path.join(tmp, "bomb.zst.gz");
  await pipeline((await fs.open(zstBomb)).createReadStream(), zlib.createGzip(), createWriteStream(gzZstBomb));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

/** Runs `work` while sampling the size of every file under `dir`; returns the largest size seen. */
async function largestWhile(dir: string, work: () => Promise<unknown>): Promise<number> {
  let max = 0;
  let done = false;
  const sample = async () => {
    while (!done) {
      for (const f of await fs.readdir(dir, { recursive: true }).catch(() => [] as string[])) {
        const st = await fs.lstat(path.join(dir, f)).catch(() => null);
        if (st?.isFile()) max = Math.max(max, st.size);
      }
      await new Promise((r) => setTimeout(r, 1));
    }
  };
  const sampler = sample();
  try {
    await work();
  } finally {
    done = true;
    await sampler;
  }
  return max;
}

describe("one metered decompression for every path", () => {
  test("decompressFile stops at the limit with too_large, and no more than the limit reaches the disk", async () => {
    const dir = await fs.mkdtemp(path.join(tmp, "file-"));
    const dest = path.join(dir, "core");
    let error: unknown;
    const largest = await largestWhile(dir, () => decompressFile(gzBomb, dest, "gzip", { maxBytes: LIMIT }).catch((e: unknown) => (error = e)));
    expect(error).toMatchObject({ code: "too_large" });
    expect(largest).toBeLessThanOrEqual(LIMIT);
    await expect(fs.stat(dest)).rejects.toMatchObject({ code: "ENOENT" });
  });

  test("analyze <gzip bomb> with MAX_DUMP_BYTES: a failed result too_large, the job directory stays under the limit", async () => {
    const work = path.join(tmp, "work-cli");
    await fs.mkdir(work);
    const io: AnalyzeIo & { out: string } = {
      out: "",
      env: { WORK_DIR: work, MAX_DUMP_BYTES: String(LIMIT), DEBUGINFOD_URLS: "" },
      stdout: (s) => void (io.out += s),
      stderr: () => undefined,
    };
    let code = -1;
    const largest = await largestWhile(work, async () => (code = await analyzeCommand([gzBomb, "--json"], io)));
    expect(code).toBe(1);
    expect(ResultSchema.parse(JSON.parse(io.out)).error?.code).toBe("too_large");
    expect(largest).toBeLessThanOrEqual(LIMIT);
  });

  test("the symbol path (what the worker runs after a download) meters a zstd bomb too", async () => {
    const workDir = await fs.mkdtemp(path.join(tmp, "job-"));
    let result: Awaited<ReturnType<typeof analyzeDump>> | undefined;
    const largest = await largestWhile(workDir, async () => (result = await analyzeDump({ core: zstBomb, workDir, maxDumpBytes: LIMIT })));
    expect(result).toMatchObject({ status: "failed", error: { code: "too_large" } });
    expect(largest).toBeLessThanOrEqual(LIMIT);
  });

  test("download: gzip around a zstd bomb passes the outer meter but is refused as unsupported_compression, nothing left behind", async () => {
    const dir = await fs.mkdtemp(path.join(tmp, "dl-"));
    const err = await downloadDump({
      location: { kind: "file", path: gzZstBomb },
      dir,
      maxBytes: LIMIT,
      allowedHosts: [],
      allowedFileRoots: [tmp],
    }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "unsupported_compression" });
    expect(await fs.readdir(dir)).toEqual([]);
  });
});
