import { afterEach, beforeEach, describe, expect, it } from "@jest/globals";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { TransientError } from "../../../lib/errors.js";
import { createFileSink, writeFileAtomic } from "../../../lib/results/file.js";
import { sampleDoc } from "./fixtures.js";

let tmp: string;
beforeEach(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-file-sink-"));
});
afterEach(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

describe("file sink", () => {
  it("writes RESULTS_DIR/{analysis_id}.json, creating the directory, and replaces it on a redelivery", async () => {
    const dir = path.join(tmp, "a", "b", "results");
    const sink = createFileSink(dir);
    const { id, doc } = sampleDoc();
    await sink.store(id, doc, { status: "completed" });
    const file = path.join(dir, `${id}.json`);
    expect(JSON.parse(await fs.readFile(file, "utf8"))).toEqual(JSON.parse(JSON.stringify(doc)));
    await sink.store(id, { ...doc, attempt: 2 }, { status: "completed" });
    expect(JSON.parse(await fs.readFile(file, "utf8")).attempt).toBe(2);
    expect(await fs.readdir(dir)).toEqual([`${id}.json`]);
  });

  it("is atomic: a concurrent reader only ever sees a whole document", async () => {
    const file = path.join(tmp, "doc.json");
    const big = (n: number) => JSON.stringify({ n, pad: String(n).repeat(400_000) });
    await writeFileAtomic(file, big(0));
    let writing = true;
    let reads = 0;
    const reader = (async () => {
      while (writing) {
        const text = await fs.readFile(file, "utf8");
        expect(() => JSON.parse(text)).not.toThrow();
        reads++;
      }
    })();
    for (let i = 1; i <= 20; i++) await writeFileAtomic(file, big(i));
    writing = false;
    await reader;
    expect(reads).toBeGreaterThan(0);
    expect(JSON.parse(await fs.readFile(file, "utf8")).n).toBe(20);
    expect((await fs.readdir(tmp)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });

  it("a write error is transient, names the file, and leaves no temp file", async () => {
    const blocker = path.join(tmp, "not-a-dir");
    await fs.writeFile(blocker, "x");
    const sink = createFileSink(blocker);
    const { id, doc } = sampleDoc();
    const err = await sink.store(id, doc, { status: "completed" }).then(
      () => null,
      (e: unknown) => e as TransientError,
    );
    expect(err).toBeInstanceOf(TransientError);
    expect(err!.code).toBe("result_store_failed");
    expect(err!.message).toContain(path.join(blocker, `${id}.json`));
    expect(err!.message).toMatch(/EEXIST|ENOTDIR/);

    // A directory the temp file can be created in but not renamed over: the temp file is removed.
    const dir = path.join(tmp, "results");
    await fs.mkdir(path.join(dir, `${id}.json`), { recursive: true });
    await fs.writeFile(path.join(dir, `${id}.json`, "keep"), "x");
    await expect(createFileSink(dir).store(id, doc, { status: "completed" })).rejects.toBeInstanceOf(TransientError);
    expect((await fs.readdir(dir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
  });
});
