/**
 * A client for the OCI distribution API, exactly as much as pulling files
 * out of a crashed container's image needs: GET a manifest (following an
 * index to the platform of the core), GET a blob into a file.
 *
 * Why each rule:
 * - Every host (registry, mirror, token realm, a blob redirect's storage
 *   host) passes the same host policy as a dump URL (ALLOWED_REGISTRY_HOSTS,
 *   lib/storage/hostPolicy.ts) and the connection goes to the checked
 *   address (pinnedFetch): `data.image` comes from an event, so a reference
 *   like `169.254.169.254/x:y` must not make the worker a proxy.
 * - Plain http only for registries the operator listed as insecure; a
 *   redirect never downgrades to http otherwise.
 * - Auth: anonymous first; on 401 the `WWW-Authenticate` challenge decides:
 *   `Bearer realm=…,service=…,scope=…` fetches a token from the realm (with
 *   the docker config's credentials for the registry when there are some),
 *   `Basic` sends those credentials. Tokens are kept per registry and scope
 *   until they expire. Credentials never follow a redirect to another host.
 * - Bounds: manifests are read up to `maxManifestBytes`, blobs up to the
 *   size the manifest declared and `maxBlobBytes`; each request has a
 *   deadline; content is verified against its sha256 digest.
 * - Mirrors: a registry's mirrors are tried first, in order, then the
 *   registry itself; a mirror's failure is only remembered in the errors.
 */
import { createHash } from "node:crypto";
import { createWriteStream } from "node:fs";
import fs from "node:fs/promises";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import * as z from "zod";
import { isPermanent, toError } from "../errors.js";
import { checkHostAllowed, type PolicyName } from "../storage/hostPolicy.js";
import { pinnedFetch } from "../storage/pinnedFetch.js";
import { apiHost, DIGEST, formatReference, type ImageReference } from "./reference.js";

/** Why an image could not be used; lands in the result's warning. */
export type RegistryErrorReason = "not_found" | "unauthorized" | "not_allowed" | "too_large" | "bad_content" | "no_platform" | "unavailable";

/** A registry request that failed; never ends a job (the image source is one source among others). */
export class RegistryError extends Error {
  constructor(
    readonly reason: RegistryErrorReason,
    message: string,
    options: { cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "RegistryError";
  }
}

/** user:password for a registry, from a docker config.json `auths` entry. */
export interface Credentials {
  username: string;
  password: string;
}

export interface RegistryClientOptions {
  /** ALLOWED_REGISTRY_HOSTS entries (same syntax as ALLOWED_DUMP_HOSTS). */
  allowedHosts?: string[];
  /** Registries (host[:port]) spoken to over plain http. */
  insecure?: string[];
  /** Mirrors per registry name (docker.io → [mirror.local:5000]). */
  mirrors?: Record<string, string[]>;
  /** Credentials per registry name. */
  auth?: Record<string, Credentials>;
  maxManifestBytes?: number;
  maxBlobBytes?: number;
  /** Deadline of each request (a blob's whole transfer included). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** One layer of an image manifest. */
export interface Layer {
  digest: string;
  mediaType: string;
  size: number;
}

/** An image resolved to the manifest of one platform. */
export interface ResolvedImage {
  reference: string;
  /** Digest of what the reference names (an index for a multi-arch image). */
  digest: string;
  /** Digest of the platform's own manifest (equal to `digest` for a single-arch image). */
  manifestDigest: string;
  platform: string;
  /** Base layer first, as the manifest lists them. */
  layers: Layer[];
  /** Where the manifest came from (a mirror or the registry). */
  host: string;
}

const POLICY: PolicyName = { noun: "registry host", variable: "ALLOWED_REGISTRY_HOSTS" };
const MANIFEST_TYPES = [
  "application/vnd.oci.image.index.v1+json",
  "application/vnd.docker.distribution.manifest.list.v2+json",
  "application/vnd.oci.image.manifest.v1+json",
  "application/vnd.docker.distribution.manifest.v2+json",
];
const DescriptorSchema = z.object({
  mediaType: z.string().default(""),
  digest: z.string().regex(DIGEST),
  size: z.number().int().nonnegative(),
  platform: z.object({ architecture: z.string(), os: z.string(), variant: z.string().optional() }).optional(),
});
const ManifestSchema = z.object({
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  manifests: z.array(DescriptorSchema).optional(),
  layers: z.array(DescriptorSchema).optional(),
});
const TokenSchema = z.object({ token: z.string().optional(), access_token: z.string().optional(), expires_in: z.number().optional() });

/** The core's machine (x86_64, aarch64) as an OCI platform architecture. */
export function ociArchitecture(machine: string): string {
  return ({ x86_64: "amd64", aarch64: "arm64", i386: "386", arm: "arm", ppc64le: "ppc64le", s390x: "s390x", riscv64: "riscv64" } as Record<string, string>)[machine] ?? machine;
}

/** Parses a `WWW-Authenticate` challenge: scheme and its parameters. */
export function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const m = /^\s*(\w+)\s*(.*)$/.exec(header);
  if (!m) return { scheme: "", params: {} };
  const params: Record<string, string> = {};
  for (const p of m[2]!.matchAll(/(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g)) params[p[1]!.toLowerCase()] = (p[2] ?? p[3] ?? "").replace(/\\(.)/g, "$1");
  return { scheme: m[1]!.toLowerCase(), params };
}

/** Reads a body up to `max` bytes; more is RegistryError("too_large"). */
async function readBounded(res: Response, max: number, what: string): Promise<Buffer> {
  const declared = Number(res.headers.get("content-length") ?? "0");
  if (declared > max) throw new RegistryError("too_large", `${what}: ${declared} bytes, over the limit of ${max}`);
  const chunks: Buffer[] = [];
  let n = 0;
  if (res.body) {
    for await (const c of Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>)) {
      n += (c as Buffer).length;
      if (n > max) throw new RegistryError("too_large", `${what}: over the limit of ${max} bytes`);
      chunks.push(c as Buffer);
    }
  }
  return Buffer.concat(chunks);
}

function sha256(b: Buffer): string {
  return `sha256:${createHash("sha256").update(b).digest("hex")}`;
}

export class RegistryClient {
  private readonly tokens = new Map<string, { token: string; until: number }>();
  private readonly maxManifestBytes: number;
  private readonly maxBlobBytes: number;
  private readonly timeoutMs: number;

  constructor(private readonly opts: RegistryClientOptions = {}) {
    this.maxManifestBytes = opts.maxManifestBytes ?? 4 * 1024 * 1024;
    this.maxBlobBytes = opts.maxBlobBytes ?? 4 * 1024 * 1024 * 1024;
    this.timeoutMs = opts.timeoutMs ?? 300_000;
  }

  private scheme(host: string): string {
    return (this.opts.insecure ?? []).includes(host) ? "http" : "https";
  }

  /** The hosts to ask for `registry`: its mirrors, then itself. */
  hostsOf(registry: string): string[] {
    return [...(this.opts.mirrors?.[registry] ?? []), apiHost(registry)];
  }

  private signal(): AbortSignal {
    const t = AbortSignal.timeout(this.timeoutMs);
    return this.opts.signal ? AbortSignal.any([this.opts.signal, t]) : t;
  }

  /** One policy-checked GET, redirects followed (each hop checked, credentials kept to the first host). */
  private async get(url: URL, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    let u = url;
    const origin = url.host;
    for (let hop = 0; hop < 6; hop++) {
      let addrs: string[];
      try {
        addrs = await checkHostAllowed(u, this.opts.allowedHosts ?? [], POLICY);
      } catch (e: unknown) {
        // A name that does not resolve is the registry being unreachable, not a policy refusal.
        throw new RegistryError(isPermanent(e) ? "not_allowed" : "unavailable", toError(e).message, { cause: e });
      }
      const h = u.host === origin ? headers : Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== "authorization"));
      let res: Response;
      try {
        res = await pinnedFetch(u, addrs, { headers: h, signal });
      } catch (e: unknown) {
        if (this.opts.signal?.aborted) throw e;
        throw new RegistryError("unavailable", `${u.host}: ${toError(e).message}`, { cause: e });
      }
      if (![301, 302, 303, 307, 308].includes(res.status)) return res;
      await res.body?.cancel();
      const loc = res.headers.get("location");
      if (!loc) throw new RegistryError("bad_content", `${u.host}: redirect without a location`);
      const next = new URL(loc, u);
      if (next.protocol !== "https:" && !(next.protocol === "http:" && u.protocol === "http:" && (this.opts.insecure ?? []).includes(next.host))) {
        throw new RegistryError("not_allowed", `${u.host}: redirect to ${next.protocol}//${next.host} refused (plain http only for REGISTRY_INSECURE hosts)`);
      }
      u = next;
    }
    throw new RegistryError("unavailable", `${url.host}: too many redirects`);
  }

  /** GET `/v2/<path>` on `host`, doing the auth dance on a 401. */
  private async request(registry: string, host: string, repository: string, path: string, accept: string[], signal: AbortSignal): Promise<Response> {
    const url = new URL(`${this.scheme(host)}://${host}/v2/${repository}/${path}`);
    const scope = `repository:${repository}:pull`;
    const headers: Record<string, string> = { accept: accept.join(", ") };
    const cached = this.tokens.get(`${host} ${scope}`);
    if (cached && cached.until > Date.now()) headers.authorization = `Bearer ${cached.token}`;
    let res = await this.get(url, headers, signal);
    if (res.status !== 401) return res;
    const challenge = parseChallenge(res.headers.get("www-authenticate") ?? "");
    await res.body?.cancel();
    const creds = this.opts.auth?.[registry] ?? this.opts.auth?.[host];
    if (challenge.scheme === "bearer" && challenge.params.realm) {
      const token = await this.token(challenge.params, scope, creds, signal);
      this.tokens.set(`${host} ${scope}`, token);
      headers.authorization = `Bearer ${token.token}`;
    } else if (challenge.scheme === "basic" && creds) {
      headers.authorization = `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}`;
    } else {
      throw new RegistryError("unauthorized", `${host}: 401 and ${creds ? "an unsupported challenge" : "no credentials in REGISTRY_AUTH_FILE"} for ${registry}`);
    }
    res = await this.get(url, headers, signal);
    if (res.status === 401) {
      await res.body?.cancel();
      throw new RegistryError("unauthorized", `${host}: 401 for ${repository} with ${creds ? "the credentials of REGISTRY_AUTH_FILE" : "an anonymous token"}`);
    }
    return res;
  }

  private async token(params: Record<string, string>, scope: string, creds: Credentials | undefined, signal: AbortSignal): Promise<{ token: string; until: number }> {
    let realm: URL;
    try {
      realm = new URL(params.realm!);
    } catch (e: unknown) {
      throw new RegistryError("bad_content", `token realm ${JSON.stringify(params.realm)} is not a URL`, { cause: e });
    }
    if (realm.protocol !== "https:" && !(realm.protocol === "http:" && (this.opts.insecure ?? []).includes(realm.host))) {
      throw new RegistryError("not_allowed", `token realm ${realm.host} over ${realm.protocol} refused (plain http only for REGISTRY_INSECURE hosts)`);
    }
    if (params.service) realm.searchParams.set("service", params.service);
    realm.searchParams.set("scope", params.scope ?? scope);
    const headers: Record<string, string> = creds ? { authorization: `Basic ${Buffer.from(`${creds.username}:${creds.password}`).toString("base64")}` } : {};
    const res = await this.get(realm, headers, signal);
    const body = await readBounded(res, 1024 * 1024, `token from ${realm.host}`);
    if (res.status === 401 || res.status === 403) throw new RegistryError("unauthorized", `token realm ${realm.host}: ${res.status}`);
    if (!res.ok) throw new RegistryError("unavailable", `token realm ${realm.host}: ${res.status}`);
    let parsed: z.infer<typeof TokenSchema>;
    try {
      parsed = TokenSchema.parse(JSON.parse(body.toString("utf8")));
    } catch (e: unknown) {
      throw new RegistryError("bad_content", `token realm ${realm.host}: not a token response`, { cause: e });
    }
    const token = parsed.token ?? parsed.access_token;
    if (!token) throw new RegistryError("bad_content", `token realm ${realm.host}: no token in the response`);
    return { token, until: Date.now() + Math.max(10, (parsed.expires_in ?? 60) - 10) * 1000 };
  }

  /** Tries each host of the registry in turn; returns the first success, throws the registry's own error last. */
  private async onHosts<T>(ref: ImageReference, f: (host: string) => Promise<T>): Promise<T> {
    const hosts = this.hostsOf(ref.registry);
    const errors: string[] = [];
    for (const [i, host] of hosts.entries()) {
      try {
        return await f(host);
      } catch (e: unknown) {
        if (this.opts.signal?.aborted || i === hosts.length - 1) {
          if (e instanceof RegistryError && errors.length > 0) throw new RegistryError(e.reason, `${e.message} (mirrors: ${errors.join("; ")})`, { cause: e });
          throw e;
        }
        errors.push(toError(e).message);
      }
    }
    throw new RegistryError("unavailable", "no registry host"); // unreachable: hosts always holds the registry
  }

  private async manifest(ref: ImageReference, host: string, which: string): Promise<{ body: Buffer; digest: string; type: string }> {
    const res = await this.request(ref.registry, host, ref.repository, `manifests/${which}`, MANIFEST_TYPES, this.signal());
    const what = `manifest ${formatReference(ref)} on ${host}`;
    if (res.status === 404) {
      await res.body?.cancel();
      throw new RegistryError("not_found", `${what}: not found`);
    }
    if (res.status === 403) {
      await res.body?.cancel();
      throw new RegistryError("unauthorized", `${what}: 403`);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new RegistryError("unavailable", `${what}: HTTP ${res.status}`);
    }
    const body = await readBounded(res, this.maxManifestBytes, what);
    const digest = sha256(body);
    if (which.startsWith("sha256:") && digest !== which) throw new RegistryError("bad_content", `${what}: content has digest ${digest}`);
    return { body, digest, type: (res.headers.get("content-type") ?? "").split(";")[0]!.trim() };
  }

  /**
   * Resolves `ref` to the manifest for `machine` (the core's, e.g. x86_64):
   * an index picks the linux manifest of that architecture.
   */
  async resolve(ref: ImageReference, machine: string): Promise<ResolvedImage> {
    return this.onHosts(ref, async (host) => {
      const top = await this.manifest(ref, host, ref.digest ?? ref.tag ?? "latest");
      const parse = (b: Buffer, what: string) => {
        try {
          return ManifestSchema.parse(JSON.parse(b.toString("utf8")));
        } catch (e: unknown) {
          throw new RegistryError("bad_content", `${what}: not an image manifest or index (${toError(e).message.slice(0, 200)})`, { cause: e });
        }
      };
      let m = parse(top.body, formatReference(ref));
      let manifestDigest = top.digest;
      const arch = ociArchitecture(machine);
      if (m.manifests) {
        const pick = m.manifests.find((d) => d.platform?.os === "linux" && d.platform.architecture === arch);
        if (!pick) {
          const have = m.manifests.map((d) => (d.platform ? `${d.platform.os}/${d.platform.architecture}` : "?")).join(", ");
          throw new RegistryError("no_platform", `${formatReference(ref)} has no linux/${arch} image (it has ${have || "none"})`);
        }
        const sub = await this.manifest(ref, host, pick.digest);
        m = parse(sub.body, `${formatReference(ref)} linux/${arch}`);
        manifestDigest = sub.digest;
        if (m.manifests) throw new RegistryError("bad_content", `${formatReference(ref)}: an index inside an index`);
      }
      const layers = (m.layers ?? []).map((l) => ({ digest: l.digest, mediaType: l.mediaType, size: l.size }));
      return { reference: formatReference(ref), digest: top.digest, manifestDigest, platform: `linux/${arch}`, layers, host };
    });
  }

  /**
   * Downloads blob `layer` of `ref` to `file`, verifying its size and
   * digest. Returns the bytes transferred.
   */
  async fetchBlob(ref: ImageReference, layer: Layer, file: string): Promise<number> {
    if (layer.size > this.maxBlobBytes) throw new RegistryError("too_large", `layer ${layer.digest}: ${layer.size} bytes, over the limit of ${this.maxBlobBytes}`);
    return this.onHosts(ref, async (host) => {
      const signal = this.signal();
      const res = await this.request(ref.registry, host, ref.repository, `blobs/${layer.digest}`, ["*/*"], signal);
      if (!res.ok || !res.body) {
        await res.body?.cancel();
        throw new RegistryError(res.status === 404 ? "not_found" : res.status === 403 ? "unauthorized" : "unavailable", `layer ${layer.digest} on ${host}: HTTP ${res.status}`);
      }
      const hash = createHash("sha256");
      let n = 0;
      const meter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          n += chunk.length;
          if (n > layer.size) return cb(new RegistryError("bad_content", `layer ${layer.digest}: more than the ${layer.size} bytes its manifest declares`));
          hash.update(chunk);
          cb(null, chunk);
        },
      });
      try {
        await pipeline(Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>), meter, createWriteStream(file), { signal });
      } catch (e: unknown) {
        await fs.rm(file, { force: true });
        if (e instanceof RegistryError || this.opts.signal?.aborted) throw e;
        throw new RegistryError("unavailable", `layer ${layer.digest} from ${host}: ${toError(e).message}`, { cause: e });
      }
      const got = `sha256:${hash.digest("hex")}`;
      if (got !== layer.digest || n !== layer.size) {
        await fs.rm(file, { force: true });
        throw new RegistryError("bad_content", `layer ${layer.digest}: received ${n} bytes with digest ${got}`);
      }
      return n;
    });
  }
}

const AuthFileSchema = z.object({
  auths: z.record(z.string(), z.object({ auth: z.string().optional(), username: z.string().optional(), password: z.string().optional() })).default({}),
});

/**
 * Credentials per registry from a docker `config.json`-style file (a
 * Kubernetes `kubernetes.io/dockerconfigjson` secret): `auths` keyed by
 * registry (`https://index.docker.io/v1/` is Docker Hub), each `auth`
 * (base64 user:password) or `username`/`password`.
 */
export function parseAuthFile(text: string, file = "REGISTRY_AUTH_FILE"): Record<string, Credentials> {
  let parsed: z.infer<typeof AuthFileSchema>;
  try {
    parsed = AuthFileSchema.parse(JSON.parse(text));
  } catch (e: unknown) {
    throw new Error(`${file}: not a docker config.json (${toError(e).message.slice(0, 200)})`, { cause: e });
  }
  const out: Record<string, Credentials> = {};
  for (const [key, v] of Object.entries(parsed.auths)) {
    let host = key.replace(/^[a-z]+:\/\//, "").replace(/\/.*$/, "");
    if (host === "index.docker.io" || host === "registry-1.docker.io") host = "docker.io";
    let username = v.username;
    let password = v.password;
    if (v.auth) {
      const plain = Buffer.from(v.auth, "base64").toString("utf8");
      const i = plain.indexOf(":");
      if (i > 0) {
        username = plain.slice(0, i);
        password = plain.slice(i + 1);
      }
    }
    if (username !== undefined && password !== undefined) out[host] = { username, password };
  }
  return out;
}
