/**
 * A core names its modules; those names are the producer's bytes. A name
 * like `/////../../../victim` must not make the worker delete or replace a
 * file outside the job directory when it builds the symbol tree (issue 9).
 */
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { analyzeCommand, type AnalyzeIo } from "../../worker/commands/analyze.js";
import { ResultSchema } from "../../lib/result.js";
import { checkModulePath } from "../../lib/symbols/inventory.js";
import { confine, mkdirInside } from "../../lib/storage/workDir.js";
import { crashProgram, rewriteNtFileNames, type Crash } from "../helpers/crashProgram.js";

const NULL_DEREF = `
#include <stdio.h>
int main(void) { volatile int *p = 0; printf("%d\\n", *p); return 0; }
`;

let tmp: string;
let crash: Crash;
beforeAll(async () => {
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "hostile-tree-"));
  // A long directory name leaves room in the note for a long hostile name of the same length.
  crash = await crashProgram({ dir: path.join(tmp, "b".repeat(200)), source: NULL_DEREF });
});
afterAll(async () => {
  await fs.rm(tmp, { recursive: true, force: true });
});

function capture(env: Record<string, string>): AnalyzeIo & { out: string; err: string } {
  const io = { out: "", err: "", env, stdout: (s: string) => void (io.out += s), stderr: (s: string) => void (io.err += s) };
  return io;
}

describe("module paths from a core are data, never path syntax", () => {
  test("checkModulePath folds slashes and refuses . and .. components and control characters", () => {
    expect(checkModulePath("//usr///lib/libc.so.6")).toEqual({ path: "/usr/lib/libc.so.6" });
    expect(checkModulePath("libfoo.so")).toEqual({ path: "libfoo.so" });
    expect(checkModulePath("./server")).toEqual({ path: "./server" });
    for (const bad of ["/////../../etc/passwd", "/usr/lib/./x", "/a/..", "/a\nb", "/a\0b", "/a\x1b[31mb", "/a\rb", "//"]) {
      expect(checkModulePath(bad)).toHaveProperty("invalid");
    }
  });

  test("confine keeps every name below its root; mkdirInside does not follow a planted symlink", async () => {
    const root = path.join(tmp, "root");
    await fs.mkdir(root);
    expect(confine(root, "/usr/lib/x")).toBe(path.join(root, "usr/lib/x"));
    expect(() => confine(root, "/../../x")).toThrow(expect.objectContaining({ code: "invalid_input" }));
    expect(() => confine(root, "a\0b")).toThrow(expect.objectContaining({ code: "invalid_input" }));
    const outside = path.join(tmp, "outside");
    await fs.mkdir(outside);
    await fs.symlink(outside, path.join(root, "usr"));
    await expect(mkdirInside(root, "usr/lib")).rejects.toMatchObject({ code: "invalid_input" });
    expect(await fs.readdir(outside)).toEqual([]);
    // With the set one tree builder shares: what it checked is skipped, what it did not is still checked.
    const checked = new Set<string>();
    await mkdirInside(root, "lib/x86_64-linux-gnu", checked);
    expect([...checked]).toEqual([path.join(root, "lib"), path.join(root, "lib/x86_64-linux-gnu")]);
    await fs.symlink(outside, path.join(root, "lib", "debug"));
    await expect(mkdirInside(root, "lib/debug/.build-id", checked)).rejects.toMatchObject({ code: "invalid_input" });
    expect(await fs.readdir(outside)).toEqual([]);
  });

  test("a core whose NT_FILE names its executable /////../../victim: the victim is untouched, the module reported invalid", async () => {
    const victimDir = await fs.mkdtemp(path.join(tmp, "victim-"));
    const victim = path.join(victimDir, "victim");
    await fs.writeFile(victim, "precious\n");
    const before = await fs.lstat(victim);
    const core = path.join(tmp, "hostile.core");
    await fs.copyFile(crash.core, core);
    // Enough `..` to climb out of any job directory, padded to the real name's length with slashes.
    const hostile = "/" + "../".repeat(40) + victim.slice(1);
    expect(await rewriteNtFileNames(core, (n) => (n === crash.exe ? hostile : n))).toBeGreaterThan(0);

    // --exe matches the core's build-id: before the fix this module was "found" and placed at sysroot + "/../../…/victim".
    const io = capture({ WORK_DIR: path.join(tmp, "work"), DEBUGINFOD_URLS: "" });
    const code = await analyzeCommand([core, "--exe", crash.exe, "--json"], io);
    const r = ResultSchema.parse(JSON.parse(io.out));

    const after = await fs.lstat(victim);
    expect(after.isSymbolicLink()).toBe(false);
    expect(after.ino).toBe(before.ino);
    expect(await fs.readFile(victim, "utf8")).toBe("precious\n");
    expect(await fs.readdir(victimDir)).toEqual(["victim"]);
    expect(code).toBe(0);
    const mod = r.modules?.find((m) => m.path.includes(".."));
    expect(mod).toMatchObject({ status: "invalid", file: null });
    expect(r.symbolication?.missing_build_ids).not.toContain(mod?.build_id);
  });
});
