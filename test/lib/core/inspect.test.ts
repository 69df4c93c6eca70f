import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { inspectCore } from "../../../lib/core/inspect.js";
import { PermanentError } from "../../../lib/errors.js";
import { compressedCores, fixture, requireFixtures } from "../../helpers/fixtures.js";

let tmp: string;
beforeAll(async () => {
  requireFixtures();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "elf-test-"));
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

async function codeOf(p: Promise<unknown>): Promise<string> {
  const e = await p.then(
    () => null,
    (x: unknown) => x,
  );
  expect(e).toBeInstanceOf(PermanentError);
  return (e as PermanentError).code;
}

async function cut(src: string, bytes: number, name: string): Promise<string> {
  const out = path.join(tmp, name);
  const fh = await fs.open(src, "r");
  const buf = Buffer.alloc(bytes);
  await fh.read(buf, 0, bytes, 0);
  await fh.close();
  await fs.writeFile(out, buf);
  return out;
}

describe("inspectCore", () => {
  test("a real core: x86_64 64-bit little-endian, complete", async () => {
    const f = fixture("null-deref");
    const info = await inspectCore(f.core);
    const st = await fs.stat(f.core);
    expect(info).toEqual({
      size: st.size,
      compression: null,
      machine: os.arch() === "arm64" ? "aarch64" : "x86_64",
      class: 64,
      endian: "little",
      type: "core",
      truncated: false,
      expectedSize: st.size,
    });
  });

  test("compressed dumps are recognized by magic, not by name", async () => {
    const gz = path.join(tmp, "dump.bin");
    await fs.copyFile(compressedCores.gzip, gz);
    expect((await inspectCore(gz)).compression).toBe("gzip");
    expect((await inspectCore(compressedCores.zstd)).compression).toBe("zstd");
  });

  test("a core cut in half is truncated but usable", async () => {
    const f = fixture("null-deref");
    const size = (await fs.stat(f.core)).size;
    const half = await cut(f.core, Math.floor(size / 2), "half");
    const info = await inspectCore(half);
    expect(info.truncated).toBe(true);
    expect(info.expectedSize).toBe(size);
  });

  test("a core cut inside its program headers is truncated_core", async () => {
    expect(await codeOf(inspectCore(await cut(fixture("null-deref").core, 1024, "1k")))).toBe("truncated_core");
    expect(await codeOf(inspectCore(await cut(fixture("null-deref").core, 40, "40b")))).toBe("truncated_core");
  });

  test("bad inputs get their own codes", async () => {
    expect(await codeOf(inspectCore(path.join(tmp, "nope")))).toBe("file_not_found");
    const empty = path.join(tmp, "empty");
    await fs.writeFile(empty, "");
    expect(await codeOf(inspectCore(empty))).toBe("empty_file");
    const text = path.join(tmp, "text");
    await fs.writeFile(text, "this is not a core\n");
    expect(await codeOf(inspectCore(text))).toBe("not_a_core");
    expect(await codeOf(inspectCore(fixture("null-deref").exe))).toBe("not_a_core");
    expect(await codeOf(inspectCore(tmp))).toBe("not_a_core");
  });
});
