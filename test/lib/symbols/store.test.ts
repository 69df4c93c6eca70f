import fs from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { addToStore } from "../../../lib/symbols/add.js";
import { readBuildId } from "../../../lib/elf/buildId.js";
import { LocalSymbolStore, openSymbolStore, parseS3Location } from "../../../lib/symbols/store.js";
import { startS3Server, type S3TestServer } from "../../helpers/s3Server.js";
import { compile, stripCopy, tempDir } from "./crashFixture.js";

describe("store locations (pure)", () => {
  test("s3://bucket/prefix splits into bucket and prefix", () => {
    expect(parseS3Location("s3://symbols/team/app/")).toEqual({ bucket: "symbols", prefix: "team/app" });
    expect(parseS3Location("s3://symbols")).toEqual({ bucket: "symbols", prefix: "" });
    expect(parseS3Location("/srv/symbols")).toBeNull();
  });

  test("an S3 store without a client names the settings to add; other URL schemes are refused", () => {
    expect(() => openSymbolStore("s3://symbols/app", null)).toThrow(/AWS_ACCESS_KEY_ID/);
    expect(() => openSymbolStore("https://example.com/symbols", null)).toThrow(/expected a directory or s3:/);
    expect(openSymbolStore("file:///srv/symbols", null).location).toBe("/srv/symbols");
  });
});

describe("symbols add into a store", () => {
  let dir: string;
  let exe: string;
  let stripped: string;
  let debug: string;
  let id: string;
  let s3: S3TestServer;
  beforeAll(async () => {
    dir = await tempDir("store");
    exe = await compile(dir, "app", "int main(void){return 0;}\n");
    ({ stripped, debug } = await stripCopy(exe, path.join(dir, "app.stripped")));
    id = (await readBuildId(exe))!;
    s3 = await startS3Server();
  });
  afterAll(async () => {
    await s3?.stop();
    await fs.rm(dir, { recursive: true, force: true });
  });

  test("local: an unstripped binary is both executable and debuginfo; stripped only executable; a debug file only debuginfo", async () => {
    const root = path.join(dir, "local-store");
    const store = new LocalSymbolStore(root);
    const added = await addToStore([exe], store);
    expect(added).toEqual([{ file: exe, build_id: id, kinds: ["executable", "debuginfo"] }]);
    expect(await fs.readdir(path.join(root, id))).toEqual(["debuginfo", "executable"]);

    const root2 = path.join(dir, "local-store-2");
    const split = await addToStore([stripped, debug], new LocalSymbolStore(root2));
    expect(split.map((a) => a.kinds)).toEqual([["executable"], ["debuginfo"]]);
    expect(await readBuildId(path.join(root2, id, "executable"))).toBe(id);
    expect(await fs.readFile(path.join(root2, id, "debuginfo"))).toEqual(await fs.readFile(debug));
  });

  test("files that cannot be stored are reported one by one, the rest is stored", async () => {
    const noid = await compile(dir, "noid", "int main(void){return 0;}\n", ["-Wl,--build-id=none"]);
    const text = path.join(dir, "notes.txt");
    await fs.writeFile(text, "not elf");
    const added = await addToStore([noid, text, stripped], new LocalSymbolStore(path.join(dir, "local-store-3")));
    expect(added.map((a) => a.error ?? "ok")).toEqual([expect.stringMatching(/no build-id/), "not an ELF file", "ok"]);
  });

  test("S3: stored under <prefix>/<id>/<kind>, read back byte for byte, absent keys are 'not there'", async () => {
    await s3.createBucket("symbols-add");
    const store = openSymbolStore("s3://symbols-add/ci/app", s3.client);
    await addToStore([stripped, debug], store);
    const back = path.join(dir, "back");
    expect(await store.fetchTo(id, "executable", back)).toBe(true);
    expect(await fs.readFile(back)).toEqual(await fs.readFile(stripped));
    expect(await store.fetchTo(id, "debuginfo", back)).toBe(true);
    expect(await fs.readFile(back)).toEqual(await fs.readFile(debug));
    expect(await store.fetchTo("00".repeat(20), "executable", back)).toBe(false);
  });
});
