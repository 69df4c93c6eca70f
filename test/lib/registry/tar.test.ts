/**
 * The tar reader against archives GNU tar writes (ustar, GNU long names and
 * long links, pax path headers), and corrupt input.
 */
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { Readable } from "node:stream";
import { readTar, TarError, type TarEntry } from "../../../lib/registry/tar.js";

let dir: string;
const long = `${"d".repeat(120)}/${"f".repeat(130)}.so`;

beforeAll(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-tar-"));
  const src = path.join(dir, "src");
  await fs.mkdir(path.join(src, path.dirname(long)), { recursive: true });
  await fs.writeFile(path.join(src, long), "long body");
  await fs.writeFile(path.join(src, "small"), Buffer.alloc(1000, 7));
  await fs.symlink(`/${long}`, path.join(src, "link"));
  await fs.link(path.join(src, "small"), path.join(src, "hard"));
});
afterAll(async () => fs.rm(dir, { recursive: true, force: true }));

async function read(format: string): Promise<Array<TarEntry & { body: string }>> {
  const tar = execFileSync("tar", [`--format=${format}`, "-C", path.join(dir, "src"), "-cf", "-", "."]);
  const out: Array<TarEntry & { body: string }> = [];
  // Tiny chunks: headers and bodies cross chunk boundaries.
  const chunks = Array.from({ length: Math.ceil(tar.length / 37) }, (_, i) => tar.subarray(i * 37, (i + 1) * 37));
  await readTar(Readable.from(chunks), (e) => {
    const item = { ...e, body: "" };
    out.push(item);
    return e.type === "file" ? { write: (c) => void (item.body += c.toString("latin1")), end: () => undefined } : null;
  });
  return out;
}

describe("readTar", () => {
  // (ustar cannot hold a 130-character file name at all; its prefix field is tested below.)
  test.each(["gnu", "pax"])("%s: names, long names, symlinks, hard links, bodies", async (format) => {
    const entries = await read(format);
    const by = new Map(entries.map((e) => [e.name, e]));
    expect(by.get(long)).toMatchObject({ type: "file", size: 9, body: "long body" });
    expect(by.get("small")).toMatchObject({ type: "file", size: 1000, body: "\x07".repeat(1000) });
    expect(by.get("link")).toMatchObject({ type: "symlink", linkname: `/${long}` });
    const hard = entries.filter((e) => e.name === "small" || e.name === "hard");
    expect(hard.map((e) => e.type).sort()).toEqual(["file", "hardlink"]);
    expect(by.get(path.dirname(long))?.type).toBe("directory");
  });

  test("ustar prefix field: a 150-character path in a ustar archive", async () => {
    const src = path.join(dir, "ustar");
    const name = `${"p".repeat(90)}/${"q".repeat(50)}`;
    await fs.mkdir(path.join(src, path.dirname(name)), { recursive: true });
    await fs.writeFile(path.join(src, name), "x");
    const tar = execFileSync("tar", ["--format=ustar", "-C", src, "-cf", "-", name]);
    const names: string[] = [];
    await readTar(Readable.from([tar]), (e) => (names.push(e.name), null));
    expect(names).toContain(name);
  });

  test("a corrupt header is a TarError, a truncated body too", async () => {
    const tar = execFileSync("tar", ["-C", path.join(dir, "src"), "-cf", "-", "small"]);
    const bad = Buffer.from(tar);
    bad[10] = bad[10]! ^ 0xff;
    await expect(readTar(Readable.from([bad]), () => null)).rejects.toBeInstanceOf(TarError);
    await expect(readTar(Readable.from([tar.subarray(0, 700)]), () => null)).rejects.toThrow(/truncated/);
  });

  test("stop() ends reading before the next header", async () => {
    const tar = execFileSync("tar", ["-C", path.join(dir, "src"), "-cf", "-", "small", "hard", "link"]);
    const seen: string[] = [];
    await readTar(
      Readable.from([tar]),
      (e) => (seen.push(e.name), null),
      () => seen.length === 1,
    );
    expect(seen).toEqual(["small"]);
  });
});
