/**
 * The `image` symbol source end to end, with real parts only: Debian's
 * docker-registry on loopback (one anonymous, one behind token auth), images
 * pushed here over the distribution API, and a core crashed inside a Debian
 * bullseye root (glibc 2.31, not this machine's 2.36) by
 * scripts/build-bullseye-image.sh, with what gdb printed inside that root.
 *
 * The image (base first):
 *   L0 (zstd)  the bullseye root (minbase + libc6-dbg)
 *   L1 (gzip)  /srv/app/crash, stripped; a decoy of another build at the app's /usr/lib/debug/.build-id path
 *   L2 (gzip)  /app -> /srv/app (a symlink into the older layer), a whiteout of the decoy,
 *              the app's debug file at /usr/lib/debug/app/crash.debug
 */
import { afterAll, beforeAll, describe, expect, test } from "@jest/globals";
import { execFileSync } from "node:child_process";
import fs from "node:fs/promises";
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import { analyzeDump, type SymbolsOptions } from "../../../lib/analyze.js";
import { parseBacktrace } from "../../../lib/gdb/parseBacktrace.js";
import { RegistryClient } from "../../../lib/registry/client.js";
import { parseReference } from "../../../lib/registry/reference.js";
import type { Frame, Result } from "../../../lib/result.js";
import type { ImageStats } from "../../../lib/symbols/image.js";
import type { PreparedSymbols } from "../../../lib/symbols/prepare.js";
import { repoRoot } from "../../helpers/fixtures.js";
import { gzipLayer, loopbackImageOptions, manifestSize, pushImage, pushIndex, sha256, startRegistry, tarOf, type TestLayer, type TestRegistry } from "../../helpers/registry.js";

const B = path.join(repoRoot, "build", "bullseye");
const NEEDED = ["base.tar", "base.tar.zst", "core", "crash.stripped", "crash.debug", "expected-bt.txt"];
const APP_ID = "f9d2e99af1774f6942d32e7a8f65f5c25006c244";

let reg: TestRegistry;
let tokenReg: TestRegistry;
let tmp: string;
let layers: TestLayer[];
let manifestDigest: string;
let indexDigest: string;

function requireFixture(): void {
  const missing = NEEDED.filter((f) => !existsSync(path.join(B, f)));
  // Loud, never a skip: the image tests are the proof of issue 13.
  if (missing.length > 0) throw new Error(`bullseye fixture missing (${missing.join(", ")} under ${B}): run scripts/build-bullseye-image.sh (as root; make fixtures does)`);
}

async function stage(files: Record<string, string | Buffer | { symlink: string }>): Promise<Buffer> {
  const d = await fs.mkdtemp(path.join(tmp, "layer-"));
  for (const [name, content] of Object.entries(files)) {
    const f = path.join(d, name);
    await fs.mkdir(path.dirname(f), { recursive: true });
    if (typeof content === "object" && !Buffer.isBuffer(content)) await fs.symlink(content.symlink, f);
    else await fs.writeFile(f, content, { mode: 0o755 });
  }
  return tarOf(d);
}

beforeAll(async () => {
  requireFixture();
  tmp = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-image-"));
  reg = await startRegistry();
  tokenReg = await startRegistry({ token: { user: "puller", password: "s3cret" } });
  const base: TestLayer = {
    blob: await fs.readFile(path.join(B, "base.tar.zst")),
    mediaType: "application/vnd.oci.image.layer.v1.tar+zstd",
    diffId: sha256(await fs.readFile(path.join(B, "base.tar"))),
  };
  const decoy = await fs.readFile("/bin/true"); // an ELF of another build
  const l1 = gzipLayer(
    await stage({ "srv/app/crash": await fs.readFile(path.join(B, "crash.stripped")), [`usr/lib/debug/.build-id/${APP_ID.slice(0, 2)}/${APP_ID.slice(2)}.debug`]: decoy }),
  );
  const l2 = gzipLayer(
    await stage({
      app: { symlink: "/srv/app" },
      [`usr/lib/debug/.build-id/${APP_ID.slice(0, 2)}/.wh.${APP_ID.slice(2)}.debug`]: "",
      "usr/lib/debug/app/crash.debug": await fs.readFile(path.join(B, "crash.debug")),
    }),
  );
  layers = [base, l1, l2];
  manifestDigest = await pushImage(reg, "bullseye/crash", "1", layers);
  // Multi-arch: the same amd64 image and an arm64 one (a tiny layer of its own).
  const arm = await pushImage(reg, "bullseye/multi", null, [gzipLayer(await stage({ "etc/arch": "arm64\n" }))], "arm64");
  await pushImage(reg, "bullseye/multi", null, layers);
  indexDigest = await pushIndex(reg, "bullseye/multi", "1", [
    { digest: manifestDigest, size: await manifestSize(reg, "bullseye/multi", manifestDigest), arch: "amd64" },
    { digest: arm, size: await manifestSize(reg, "bullseye/multi", arm), arch: "arm64" },
  ]);
  await pushImage(tokenReg, "team/crash", "1", layers);
  // .gnu_debuglink: the stripped app names its debug file, found in the image's /app/.debug/ (a later layer).
  const linked = path.join(tmp, "crash.linked");
  execFileSync("objcopy", [`--add-gnu-debuglink=${path.join(B, "crash.debug")}`, path.join(B, "crash.stripped"), linked]);
  await pushImage(reg, "bullseye/debuglink", "1", [
    base,
    gzipLayer(await stage({ "app/crash": await fs.readFile(linked) })),
    gzipLayer(await stage({ "app/.debug/crash.debug": await fs.readFile(path.join(B, "crash.debug")) })),
  ]);
}, 120_000);

afterAll(async () => {
  await reg?.stop();
  await tokenReg?.stop();
  if (tmp) await fs.rm(tmp, { recursive: true, force: true });
});

function symbolsWith(cache: string, extra: Partial<NonNullable<SymbolsOptions["image"]>> = {}, order?: SymbolsOptions["order"]): SymbolsOptions {
  return {
    cacheDir: path.join(tmp, "symcache"),
    cacheMaxBytes: 1 << 30,
    hostDebugFiles: false,
    ...(order ? { order } : {}),
    image: loopbackImageOptions(cache, [reg.host, tokenReg.host, tokenReg.realmHost!], extra),
  };
}

let jobs = 0;
async function analyze(image: string | null, symbols: SymbolsOptions): Promise<{ result: Result; stats: ImageStats | null; ms: number }> {
  let prepared: PreparedSymbols | null = null;
  const t = performance.now();
  const result = await analyzeDump({ core: path.join(B, "core"), workDir: path.join(tmp, `job-${jobs++}`), image, symbols, onSymbols: (p) => (prepared = p) });
  return { result, stats: (prepared as PreparedSymbols | null)?.image?.stats ?? null, ms: performance.now() - t };
}

const crashFrames = (r: Result): Frame[] => r.threads.find((t) => t.number === r.crash_thread)?.frames ?? [];
const key = (f: Frame) => ({ function: f.function, file: f.file ? path.basename(f.file) : null, line: f.line });

/** What gdb printed inside the bullseye root, parsed by the same parser. */
function expectedFrames(): ReturnType<typeof key>[] {
  const bt = parseBacktrace(readFileSync(path.join(B, "expected-bt.txt"), "utf8"));
  return (bt.threads[0]?.frames ?? []).map(key);
}

describe("image symbol source", () => {
  test("host only: the container's libc is another build, its frames are not named", async () => {
    const { result } = await analyze(null, symbolsWith(path.join(tmp, "cache-host"), {}, ["host"]));
    expect(result.status).toBe("completed");
    const libc = result.modules?.find((m) => m.path.endsWith("libc-2.31.so"));
    expect(libc?.status).not.toBe("found");
    const names = crashFrames(result).map((f) => f.function);
    expect(names).not.toContain("msort_with_tmp");
    expect(crashFrames(result).map(key)).not.toEqual(expectedFrames());
  });

  test("image: every frame is what gdb prints inside the bullseye root; cold pulls the layers, warm pulls nothing", async () => {
    const cache = path.join(tmp, "cache-image");
    const ref = `${reg.host}/bullseye/crash:1`;
    const cold = await analyze(ref, symbolsWith(cache));
    expect(cold.result.status).toBe("completed");
    expect(cold.result.warnings ?? []).not.toContainEqual(expect.stringContaining("image"));
    const expected = expectedFrames();
    expect(expected.length).toBeGreaterThanOrEqual(5);
    expect(crashFrames(cold.result).map(key)).toEqual(expected);
    // The stripped app (L1) with its debug file from a later layer (L2): file:line.
    expect(cold.result.crash_frame).toMatchObject({ function: "compare", line: 10 });
    expect(path.basename(cold.result.crash_frame!.file!)).toBe("crash.c");
    const app = cold.result.modules!.find((m) => m.path === "/app/crash")!;
    expect(app).toMatchObject({ status: "found", source: "image", debug_source: "image", symbols: "dwarf" });
    expect(app.image).toEqual({ reference: ref, layer: sha256(layers[1]!.blob), debug_layer: sha256(layers[2]!.blob) });
    const libc = cold.result.modules!.find((m) => m.path.endsWith("libc-2.31.so"))!;
    expect(libc).toMatchObject({ status: "found", source: "image", debug_source: "image" });
    expect(libc.image?.layer).toBe(sha256(layers[0]!.blob));
    expect(cold.result.image).toEqual({ reference: ref, digest: manifestDigest, manifest_digest: manifestDigest, platform: "linux/amd64" });
    const imageBytes = layers.reduce((s, l) => s + l.blob.length, 0);
    expect(cold.stats).toMatchObject({ imageBytes, pulledBytes: imageBytes, cacheHits: 0 });

    const warm = await analyze(ref, symbolsWith(cache));
    expect(crashFrames(warm.result).map(key)).toEqual(expected);
    expect(warm.stats).toMatchObject({ pulledBytes: 0, layersOpened: 0, cacheHits: 3 });
    console.log(`image source: cold ${Math.round(cold.ms)} ms (pulled ${cold.stats!.pulledBytes} of ${imageBytes} bytes), warm ${Math.round(warm.ms)} ms`);
  }, 120_000);

  test(".gnu_debuglink: the debug file the stripped binary names, beside it in .debug/, gives file:line", async () => {
    const { result } = await analyze(`${reg.host}/bullseye/debuglink:1`, symbolsWith(path.join(tmp, "cache-debuglink")));
    const app = result.modules!.find((m) => m.path === "/app/crash")!;
    expect(app).toMatchObject({ status: "found", source: "image", debug_source: "image", symbols: "dwarf" });
    expect(result.crash_frame).toMatchObject({ function: "compare", line: 10 });
  }, 60_000);

  test("a multi-arch index: the core's platform (amd64) is picked, the index digest recorded", async () => {
    const ref = `${reg.host}/bullseye/multi:1`;
    const { result } = await analyze(ref, symbolsWith(path.join(tmp, "cache-multi")));
    expect(result.image).toEqual({ reference: ref, digest: indexDigest, manifest_digest: manifestDigest, platform: "linux/amd64" });
    expect(crashFrames(result).map(key)).toEqual(expectedFrames());
    const client = new RegistryClient({ allowedHosts: ["127.0.0.1"], insecure: [reg.host] });
    const arm = await client.resolve(parseReference(ref), "aarch64");
    expect(arm.platform).toBe("linux/arm64");
    expect(arm.manifestDigest).not.toBe(manifestDigest);
    await expect(client.resolve(parseReference(ref), "s390x")).rejects.toMatchObject({ reason: "no_platform" });
  }, 60_000);

  test("token auth: credentials from a docker config.json get a Bearer token; without them a warning, never a failure", async () => {
    const ref = `${tokenReg.host}/team/crash:1`;
    const anon = await analyze(ref, symbolsWith(path.join(tmp, "cache-anon")));
    expect(anon.result.status).toBe("completed");
    expect(anon.result.warnings).toContainEqual(expect.stringMatching(/^image .* not used for symbols: unauthorized: /));
    expect(anon.result.modules!.find((m) => m.path === "/app/crash")?.status).not.toBe("found");

    const authFile = path.join(tmp, "config.json");
    await fs.writeFile(authFile, JSON.stringify({ auths: { [tokenReg.host]: { auth: Buffer.from("puller:s3cret").toString("base64") } } }));
    const { result } = await analyze(ref, symbolsWith(path.join(tmp, "cache-token"), { authFile }));
    expect(result.warnings ?? []).not.toContainEqual(expect.stringContaining("not used for symbols"));
    expect(crashFrames(result).map(key)).toEqual(expectedFrames());
    expect(tokenReg.tokenRequests.some((r) => r.scope === "repository:team/crash:pull" && r.authorization?.startsWith("Basic "))).toBe(true);
  }, 60_000);

  test("a reference that is not one, a layer that is not a tar: warnings with the reason", async () => {
    const bad = await analyze("Not A/Reference", symbolsWith(path.join(tmp, "cache-badref")));
    expect(bad.result.status).toBe("completed");
    expect(bad.result.warnings).toContainEqual(expect.stringContaining("not used for symbols: invalid_reference: "));
    const garbage = { blob: zlib.gzipSync(Buffer.alloc(4096, 0x41)), mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", diffId: sha256(Buffer.alloc(4096, 0x41)) };
    await pushImage(reg, "bullseye/garbage", "1", [garbage]);
    const corrupt = await analyze(`${reg.host}/bullseye/garbage:1`, symbolsWith(path.join(tmp, "cache-garbage")));
    expect(corrupt.result.status).toBe("completed");
    expect(corrupt.result.warnings).toContainEqual(expect.stringMatching(/not used for symbols: bad_layer: .*checksum/));
  }, 60_000);

  test("a missing image, a host outside ALLOWED_REGISTRY_HOSTS: warnings with the reason", async () => {
    const missing = await analyze(`${reg.host}/no/such:1`, symbolsWith(path.join(tmp, "cache-missing")));
    expect(missing.result.status).toBe("completed");
    expect(missing.result.warnings).toContainEqual(expect.stringContaining("not used for symbols: not_found: "));
    expect(missing.result.image).toMatchObject({ digest: null });
    const blocked = await analyze(
      `${reg.host}/bullseye/crash:1`,
      symbolsWith(path.join(tmp, "cache-blocked"), {
        registry: { allowedHosts: [], insecure: [reg.host], mirrors: {}, maxManifestBytes: 1 << 20, maxBlobBytes: 1 << 30, timeoutMs: 10_000 },
      }),
    );
    expect(blocked.result.warnings).toContainEqual(expect.stringMatching(/not_allowed: .*ALLOWED_REGISTRY_HOSTS/));
  }, 60_000);

  test("a mirror is asked before the registry; a mirror that is down falls back to the registry", async () => {
    const ref = `registry.invalid/bullseye/crash:1`; // never resolved: the mirror has it
    const { result } = await analyze(
      ref,
      symbolsWith(path.join(tmp, "cache-mirror"), {
        registry: {
          allowedHosts: ["127.0.0.1"],
          insecure: [reg.host],
          mirrors: { "registry.invalid": [reg.host] },
          maxManifestBytes: 1 << 20,
          maxBlobBytes: 1 << 30,
          timeoutMs: 10_000,
        },
      }),
    );
    expect(result.image).toMatchObject({ digest: manifestDigest });
    expect(crashFrames(result).map(key)).toEqual(expectedFrames());
    // A mirror that refuses connections: the registry itself answers.
    const down = await analyze(
      `${reg.host}/bullseye/crash:1`,
      symbolsWith(path.join(tmp, "cache-mirror-down"), {
        registry: {
          allowedHosts: ["127.0.0.1"],
          insecure: [reg.host, "127.0.0.1:1"],
          mirrors: { [reg.host]: ["127.0.0.1:1"] },
          maxManifestBytes: 1 << 20,
          maxBlobBytes: 1 << 30,
          timeoutMs: 10_000,
        },
      }),
    );
    expect(down.result.image).toMatchObject({ digest: manifestDigest });
    expect(down.result.warnings ?? []).not.toContainEqual(expect.stringContaining("not used for symbols"));
  }, 60_000);
});
