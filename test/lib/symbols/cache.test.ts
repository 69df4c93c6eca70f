import fs from "node:fs/promises";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "@jest/globals";
import { SymbolCache } from "../../../lib/symbols/cache.js";
import { tempDir } from "./crashFixture.js";

const ID = (n: number) => n.toString(16).padStart(40, "0");

describe("SymbolCache", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir("cache");
  });
  afterEach(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  const writer = (bytes: number, calls: { n: number }) => async (tmp: string) => {
    calls.n++;
    await fs.writeFile(tmp, Buffer.alloc(bytes, 7));
    return true;
  };

  test("a miss downloads once, a hit does not download", async () => {
    const cache = new SymbolCache(dir, 1 << 20);
    const calls = { n: 0 };
    const a = await cache.getOrFetch(`symbol_store/${ID(1)}/executable`, writer(100, calls));
    expect(a).toEqual({ file: path.join(dir, "symbol_store", ID(1), "executable"), hit: false });
    const b = await cache.getOrFetch(`symbol_store/${ID(1)}/executable`, writer(100, calls));
    expect(b?.hit).toBe(true);
    expect(calls.n).toBe(1);
    expect((await fs.stat(a!.file)).size).toBe(100);
  });

  test("what the source does not have is remembered only for the miss TTL, never on disk", async () => {
    let n = 0;
    const none = async () => {
      n++;
      return false;
    };
    const noTtl = new SymbolCache(dir, 1 << 20, 0);
    expect(await noTtl.getOrFetch(`debuginfod/${ID(2)}/debuginfo`, none)).toBeNull();
    expect(await noTtl.getOrFetch(`debuginfod/${ID(2)}/debuginfo`, none)).toBeNull();
    expect(n).toBe(2);
    expect(await fs.readdir(path.join(dir, ".tmp"))).toEqual([]);

    const ttl = new SymbolCache(dir, 1 << 20, 60_000);
    n = 0;
    expect(await ttl.getOrFetch(`debuginfod/${ID(5)}/debuginfo`, none)).toBeNull();
    expect(await ttl.getOrFetch(`debuginfod/${ID(5)}/debuginfo`, none)).toBeNull();
    expect(n).toBe(1);
    // Another cache directory is another cache: its misses are its own.
    const other = new SymbolCache(path.join(dir, "other"), 1 << 20, 60_000);
    expect(await other.getOrFetch(`debuginfod/${ID(5)}/debuginfo`, none)).toBeNull();
    expect(n).toBe(2);
  });

  test("a failed download leaves neither an entry nor a temp file", async () => {
    const cache = new SymbolCache(dir, 1 << 20);
    const boom = async (tmp: string) => {
      await fs.writeFile(tmp, "half");
      throw new Error("connection reset");
    };
    await expect(cache.getOrFetch(`symbol_store/${ID(3)}/executable`, boom)).rejects.toThrow("connection reset");
    expect(await cache.get(`symbol_store/${ID(3)}/executable`)).toBeNull();
    expect(await fs.readdir(path.join(dir, ".tmp"))).toEqual([]);
  });

  test("concurrent misses for one key download once", async () => {
    const cache = new SymbolCache(dir, 1 << 20);
    const calls = { n: 0 };
    const key = `symbol_store/${ID(4)}/executable`;
    const got = await Promise.all([1, 2, 3].map(() => cache.getOrFetch(key, writer(10, calls))));
    expect(calls.n).toBe(1);
    expect(new Set(got.map((g) => g?.file)).size).toBe(1);
  });

  test("inserting past the bound evicts the least recently used entries, keeping the new one", async () => {
    const cache = new SymbolCache(dir, 250);
    const calls = { n: 0 };
    const keys = [1, 2, 3].map((i) => `symbol_store/${ID(i)}/executable`);
    for (const [i, k] of keys.entries()) {
      await cache.getOrFetch(k, writer(100, calls)); // 100 + 100 fits; the third evicts
      // Distinct, ordered last-use times without waiting: 1 is oldest.
      const t = new Date(Date.now() - (10 - i) * 60_000);
      if (i < 2) await fs.utimes(path.join(dir, k), t, t);
    }
    // The third insert pushed the total to 300 > 250: key 1 (oldest) went.
    expect(
      await fs.access(path.join(dir, keys[0]!)).then(
        () => true,
        () => false,
      ),
    ).toBe(false);
    expect(await cache.size()).toBe(200);

    // A hit refreshes recency: use 2, then insert 4: 3 is now the oldest and goes.
    const old = new Date(Date.now() - 5 * 60_000);
    await fs.utimes(path.join(dir, keys[2]!), old, old);
    await cache.get(keys[1]!);
    await cache.getOrFetch(`symbol_store/${ID(9)}/executable`, writer(100, calls));
    const left = (await cache.entries()).map((e) => e.key).sort();
    expect(left).toEqual([keys[1]!, `symbol_store/${ID(9)}/executable`].sort());
  });

  test("an entry larger than the whole bound is kept (it is in use) while everything else goes", async () => {
    const cache = new SymbolCache(dir, 50);
    const calls = { n: 0 };
    await cache.getOrFetch(`symbol_store/${ID(1)}/executable`, writer(40, calls));
    await cache.getOrFetch(`symbol_store/${ID(2)}/debuginfo`, writer(80, calls));
    expect((await cache.entries()).map((e) => e.key)).toEqual([`symbol_store/${ID(2)}/debuginfo`]);
  });

  test("keys cannot climb out of the cache directory", () => {
    const cache = new SymbolCache(dir, 100);
    expect(() => cache.pathOf("symbol_store/../../etc/passwd")).toThrow(/bad symbol cache key/);
  });
});
