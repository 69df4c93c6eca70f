/**
 * A real OCI registry for tests and benchmarks (never for production): Debian's `docker-registry` (the CNCF
 * distribution server 2.8) on a free loopback port, its storage in a temp
 * dir, optionally behind real token auth (`auth: token`): the realm is a
 * small http server here that mints ES256 JWTs signed by a throwaway
 * certificate (openssl) the registry trusts through `rootcertbundle`.
 * Images are pushed over the distribution API (blob upload + manifest PUT).
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash, createPrivateKey, randomBytes, sign } from "node:crypto";
import fs from "node:fs/promises";
import http from "node:http";
import type net from "node:net";
import os from "node:os";
import path from "node:path";
import zlib from "node:zlib";
import type { ImageSymbolsOptions } from "../lib/symbols/prepare.js";
import { freePort } from "./port.js";

export interface TestRegistry {
  host: string;
  /** The token realm's host (token auth only). */
  realmHost: string | null;
  /** A push+pull token for `repo` (token auth only; anonymous registries need none). */
  pushToken(repo: string): string | null;
  /** Token requests the realm answered, with their Authorization header (for the tests' assertions). */
  tokenRequests: Array<{ scope: string | null; authorization: string | null }>;
  stop(): Promise<void>;
}

function b64url(b: Buffer | string): string {
  return Buffer.from(b).toString("base64url");
}

/** Starts docker-registry; with `token`, behind token auth whose realm accepts only `user:password` (Basic). */
export async function startRegistry(opts: { token?: { user: string; password: string } } = {}): Promise<TestRegistry> {
  const bin = "/usr/bin/docker-registry";
  await fs.access(bin).catch(() => {
    throw new Error(`${bin} missing: run scripts/install-deps.sh (Debian package docker-registry)`);
  });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), "coresight-registry-"));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let realm: http.Server | null = null;
  let realmHost: string | null = null;
  let mint: ((scope: string) => string) | null = null;
  const tokenRequests: TestRegistry["tokenRequests"] = [];
  let authYaml = "";
  if (opts.token) {
    const key = path.join(dir, "key.pem");
    const cert = path.join(dir, "cert.pem");
    execFileSync(
      "openssl",
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=coresight-test-token"],
      { stdio: "ignore" },
    );
    const der = execFileSync("openssl", ["x509", "-in", cert, "-outform", "DER"]);
    const privateKey = createPrivateKey(await fs.readFile(key));
    mint = (scope: string) => {
      const [, name, actions] = scope.split(":");
      const now = Math.floor(Date.now() / 1000);
      const header = { alg: "ES256", typ: "JWT", x5c: [der.toString("base64")] };
      const claims = {
        iss: "coresight-test",
        sub: "tester",
        aud: "coresight-registry",
        exp: now + 600,
        nbf: now - 10,
        iat: now,
        jti: randomBytes(8).toString("hex"),
        access: [{ type: "repository", name, actions: (actions ?? "pull").split(",") }],
      };
      const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
      const sig = sign("sha256", Buffer.from(input), { key: privateKey, dsaEncoding: "ieee-p1363" });
      return `${input}.${b64url(sig)}`;
    };
    const expected = `Basic ${Buffer.from(`${opts.token.user}:${opts.token.password}`).toString("base64")}`;
    realm = http.createServer((req, res) => {
      const u = new URL(req.url ?? "/", "http://x");
      const scope = u.searchParams.get("scope");
      tokenRequests.push({ scope, authorization: req.headers.authorization ?? null });
      if (req.headers.authorization !== expected) {
        res.writeHead(401, { "www-authenticate": 'Basic realm="test"' }).end();
        return;
      }
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ token: mint!(scope ?? "repository:x:pull"), expires_in: 600 }));
    });
    await new Promise<void>((r) => realm!.listen(0, "127.0.0.1", r));
    realmHost = `127.0.0.1:${(realm.address() as net.AddressInfo).port}`;
    authYaml = `auth:\n  token:\n    realm: http://${realmHost}/token\n    service: coresight-registry\n    issuer: coresight-test\n    rootcertbundle: ${cert}\n`;
  }
  const config = path.join(dir, "config.yml");
  await fs.writeFile(
    config,
    `version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: ${dir}/data\nhttp:\n  addr: ${host}\n${authYaml}`,
  );
  const child: ChildProcess = spawn(bin, ["serve", config], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const r = await fetch(`http://${host}/v2/`);
      if (r.status === 200 || r.status === 401) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`docker-registry did not start: ${stderr.slice(-2000)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host,
    realmHost,
    tokenRequests,
    pushToken: (repo) => (mint ? mint(`repository:${repo}:pull,push`) : null),
    stop: async () => {
      child.kill("SIGTERM");
      if (child.exitCode === null) await new Promise((r) => child.once("exit", r));
      if (realm) await new Promise<void>((r) => realm!.close(() => r()));
      await fs.rm(dir, { recursive: true, force: true });
    },
  };
}

export const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** A layer to push: the compressed blob and its uncompressed digest (the config's diff_id). */
export interface TestLayer {
  blob: Buffer;
  mediaType: string;
  diffId: string;
}

/** A gzip layer from a tar archive's bytes. */
export function gzipLayer(tar: Buffer): TestLayer {
  return { blob: zlib.gzipSync(tar, { level: 1 }), mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", diffId: sha256(tar) };
}

/** A tar of `dir` made by GNU tar (numeric owners, names relative to the dir). */
export function tarOf(dir: string, names: string[] = ["."]): Buffer {
  return execFileSync("tar", ["--numeric-owner", "-C", dir, "-cf", "-", ...names], { maxBuffer: 1 << 30 });
}

async function api(reg: TestRegistry, repo: string, method: string, url: string, body?: Buffer, headers: Record<string, string> = {}): Promise<Response> {
  const token = reg.pushToken(repo);
  const res = await fetch(url.startsWith("http") ? url : `http://${reg.host}${url}`, {
    method,
    headers: { ...headers, ...(token ? { authorization: `Bearer ${token}` } : {}) },
    ...(body ? { body: new Uint8Array(body) } : {}),
  });
  if (res.status >= 300) throw new Error(`${method} ${url}: ${res.status} ${await res.text()}`);
  return res;
}

async function pushBlob(reg: TestRegistry, repo: string, blob: Buffer): Promise<string> {
  const digest = sha256(blob);
  const head = await fetch(`http://${reg.host}/v2/${repo}/blobs/${digest}`, {
    method: "HEAD",
    headers: reg.pushToken(repo) ? { authorization: `Bearer ${reg.pushToken(repo)}` } : {},
  });
  if (head.status === 200) return digest;
  const start = await api(reg, repo, "POST", `/v2/${repo}/blobs/uploads/`);
  const loc = new URL(start.headers.get("location")!, `http://${reg.host}`);
  loc.searchParams.set("digest", digest);
  await api(reg, repo, "PUT", loc.toString(), blob, { "content-type": "application/octet-stream" });
  return digest;
}

/** Pushes an image manifest (config + layers, base first) for `arch`; returns its digest. */
export async function pushImage(reg: TestRegistry, repo: string, tag: string | null, layers: TestLayer[], arch = "amd64"): Promise<string> {
  const config = Buffer.from(JSON.stringify({ architecture: arch, os: "linux", rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) }, config: {} }));
  const configDigest = await pushBlob(reg, repo, config);
  const descs = [];
  for (const l of layers) descs.push({ mediaType: l.mediaType, digest: await pushBlob(reg, repo, l.blob), size: l.blob.length });
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: { mediaType: "application/vnd.oci.image.config.v1+json", digest: configDigest, size: config.length },
      layers: descs,
    }),
  );
  const digest = sha256(manifest);
  await api(reg, repo, "PUT", `/v2/${repo}/manifests/${tag ?? digest}`, manifest, { "content-type": "application/vnd.oci.image.manifest.v1+json" });
  return digest;
}

/** Pushes an index over manifests already pushed ({digest, size, arch}); returns its digest. */
export async function pushIndex(reg: TestRegistry, repo: string, tag: string, manifests: Array<{ digest: string; size: number; arch: string }>): Promise<string> {
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: manifests.map((m) => ({
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        digest: m.digest,
        size: m.size,
        platform: { os: "linux", architecture: m.arch },
      })),
    }),
  );
  await api(reg, repo, "PUT", `/v2/${repo}/manifests/${tag}`, index, { "content-type": "application/vnd.oci.image.index.v1+json" });
  return sha256(index);
}

/** The size of a pushed manifest (for an index entry). */
export async function manifestSize(reg: TestRegistry, repo: string, digest: string): Promise<number> {
  const res = await api(reg, repo, "GET", `/v2/${repo}/manifests/${digest}`, undefined, { accept: "application/vnd.oci.image.manifest.v1+json" });
  return (await res.arrayBuffer()).byteLength;
}

/** The image source's settings for registries on loopback (plain http to `insecure`, 127.0.0.1 allowed), its cache in `cacheDir`. */
export function loopbackImageOptions(cacheDir: string, insecure: string[], extra: Partial<ImageSymbolsOptions> = {}): ImageSymbolsOptions {
  return {
    enabled: true,
    cacheDir,
    cacheMaxBytes: 1 << 30,
    maxFileBytes: 1 << 30,
    registry: { allowedHosts: ["127.0.0.1"], insecure, mirrors: {}, maxManifestBytes: 1 << 20, maxBlobBytes: 1 << 30, timeoutMs: 60_000 },
    ...extra,
  };
}
