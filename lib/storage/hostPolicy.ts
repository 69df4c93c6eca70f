/**
 * Which hosts and directories a dump may come from (SSRF guard).
 *
 * A dump URL comes from an event that anyone with the agent token (or access
 * to the subject) can publish, so the worker must not be turned into a proxy
 * that reads its own cloud metadata service or a port on its loopback.
 *
 * ALLOWED_DUMP_HOSTS entries: exact host names (`minio.internal`), wildcards
 * (`*.amazonaws.com`, also matching `.amazonaws.com`), IP addresses and CIDRs
 * (`10.0.0.0/8`, `fd00::/8`), `*` for any host name. A host name or IP
 * address may name a port (`minio.internal:9000`, `10.0.0.5:9000`,
 * `[fd00::5]:9000`): that host is then allowed on the ports listed only, as
 * an exact name is (no address checks: the operator named it).
 *
 * Every IPv6 form of an IPv4 address (mapped, translated, compatible, NAT64
 * 64:ff9b::/96, 6to4) is checked as the IPv4 address it reaches.
 *
 * Rules (every resolved address of a name is checked, so a name cannot be
 * pointed at a blocked address):
 * - Empty list: any host, except addresses in the always-blocked set:
 *   loopback, link-local (169.254/16 holds the AWS/GCP/Azure/Tencent metadata
 *   services; fe80::/10), unspecified, multicast, broadcast/reserved, Aliyun's
 *   metadata address 100.100.100.200 and AWS's IPv6 metadata fd00:ec2::254.
 *   Private ranges (10/8, 172.16/12, 192.168/16, fc00::/7) stay allowed:
 *   in-cluster MinIO lives there. Production should pin hosts.
 * - Exact host name listed: allowed without further checks (the operator
 *   named it; this is how `localhost` is allowed for a local MinIO).
 * - Wildcard match: allowed when no resolved address is blocked, or each
 *   blocked one is covered by a listed IP/CIDR.
 * - Otherwise: allowed when every resolved address is covered by a listed
 *   IP/CIDR.
 *
 * DNS rebinding: checkHostAllowed returns the addresses it checked and the
 * download connects to one of them (pinnedFetch.ts), never resolving again.
 */
import type * as Dns from "node:dns";
import { constants as fsConstants } from "node:fs";
import fs from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { createRequire } from "node:module";

// Loaded at the first lookup, with require, not an ES import: loading node:dns
// reads the resolver's configuration (/etc/resolv.conf), also in a command
// that never resolves a name.
const load = createRequire(import.meta.url);
import { PermanentError, TransientError } from "../errors.js";

const ALWAYS_BLOCKED = (() => {
  const b = new net.BlockList();
  b.addSubnet("0.0.0.0", 8, "ipv4");
  b.addSubnet("127.0.0.0", 8, "ipv4");
  b.addSubnet("169.254.0.0", 16, "ipv4");
  b.addSubnet("224.0.0.0", 4, "ipv4");
  b.addSubnet("240.0.0.0", 4, "ipv4");
  b.addAddress("100.100.100.200", "ipv4");
  b.addAddress("::", "ipv6");
  b.addAddress("::1", "ipv6");
  b.addSubnet("fe80::", 10, "ipv6");
  b.addSubnet("ff00::", 8, "ipv6");
  b.addAddress("fd00:ec2::254", "ipv6");
  return b;
})();

interface Policy {
  names: Set<string>;
  /** Entries that name a port (`minio.internal:9000`, `10.0.0.5:9000`, `[fd00::5]:9000`): that host on those ports only. */
  pinned: Map<string, Set<number>>;
  suffixes: string[];
  anyName: boolean;
  ips: net.BlockList;
  hasIps: boolean;
}

function normalizeHost(h: string): string {
  return h
    .trim()
    .toLowerCase()
    .replace(/^\[|\]$/g, "")
    .replace(/\.$/, "");
}

/** The 16 bytes of an IPv6 address (with or without a dotted IPv4 tail); null when it is not one. */
function ipv6Bytes(addr: string): number[] | null {
  if (!net.isIPv6(addr)) return null;
  let text = addr.toLowerCase();
  const dotted = /^(.*:)(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const q = dotted[2]!.split(".").map(Number);
    text = `${dotted[1]}${((q[0]! << 8) | q[1]!).toString(16)}:${((q[2]! << 8) | q[3]!).toString(16)}`;
  }
  const [head, tail] = text.includes("::") ? text.split("::") : [text, null];
  const words = (x: string | null | undefined) => (x ? x.split(":").map((w) => parseInt(w, 16)) : []);
  const h = words(head);
  const t = words(tail);
  const all = tail === null ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  return all.flatMap((w) => [w >> 8, w & 0xff]);
}

/**
 * The IPv4 address an IPv6 address carries, for the forms that reach it:
 * IPv4-mapped ::ffff:a.b.c.d (any spelling: ::ffff:7f00:1), IPv4-translated
 * ::ffff:0:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::/96 and
 * 64:ff9b:1::/48, and 6to4 2002:aabb:ccdd::/48. A URL can name
 * [::127.0.0.1] or [64:ff9b::7f00:1]: each is checked as the IPv4 it reaches.
 */
function embeddedIpv4(addr: string): string | null {
  const b = ipv6Bytes(addr);
  if (!b) return null;
  const v4 = (at: number) => b.slice(at, at + 4).join(".");
  const zero = (from: number, to: number) => b.slice(from, to).every((x) => x === 0);
  if (zero(0, 10) && b[10] === 0xff && b[11] === 0xff) return v4(12);
  if (zero(0, 8) && b[8] === 0xff && b[9] === 0xff && zero(10, 12)) return v4(12);
  if (zero(0, 12) && !zero(12, 14)) return v4(12); // ::a.b.c.d, but not :: or ::1
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b && (zero(4, 12) || (b[4] === 0 && b[5] === 1))) return v4(12);
  if (b[0] === 0x20 && b[1] === 0x02) return v4(2);
  return null;
}

/** An address as the family it reaches: an IPv6 form of an IPv4 address is checked as that IPv4. */
function family(addr: string): { addr: string; type: "ipv4" | "ipv6" } {
  const v4 = embeddedIpv4(addr);
  if (v4) return { addr: v4, type: "ipv4" };
  return { addr, type: net.isIPv6(addr) ? "ipv6" : "ipv4" };
}

/** The spelling the URL parser gives a host (IPv6 compressed, lower case), to compare a listed literal with a URL's. */
function canonicalHost(h: string): string {
  try {
    return normalizeHost(new URL(`http://${net.isIPv6(h) ? `[${h}]` : h}/`).hostname);
  } catch {
    return h;
  }
}

/** `host:port` / `[v6]:port` → its parts; null for an entry without a port (a bare IPv6 address has colons but no brackets). */
function withPort(raw: string): { host: string; port: number } | null {
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(raw.trim()) ?? /^([^:[\]]+):(\d{1,5})$/.exec(raw.trim());
  if (!m || Number(m[2]) > 65535) return null;
  return { host: canonicalHost(normalizeHost(m[1]!)), port: Number(m[2]) };
}

function parsePolicy(allowed: string[]): Policy {
  const p: Policy = { names: new Set(), pinned: new Map(), suffixes: [], anyName: false, ips: new net.BlockList(), hasIps: false };
  for (const raw of allowed) {
    const hp = withPort(raw);
    if (hp) {
      p.pinned.set(hp.host, (p.pinned.get(hp.host) ?? new Set()).add(hp.port));
      continue;
    }
    const entry = normalizeHost(raw);
    if (!entry) continue;
    if (entry === "*") {
      p.anyName = true;
      continue;
    }
    const cidr = /^(.+)\/(\d{1,3})$/.exec(entry);
    if (cidr && net.isIP(cidr[1]!)) {
      const f = family(cidr[1]!);
      p.ips.addSubnet(f.addr, Number(cidr[2]), f.type);
      p.hasIps = true;
    } else if (net.isIP(entry)) {
      const f = family(entry);
      p.ips.addAddress(f.addr, f.type);
      p.hasIps = true;
    } else if (entry.startsWith("*.") || entry.startsWith(".")) {
      p.suffixes.push(entry.slice(entry.indexOf(".")));
    } else {
      p.names.add(entry);
    }
  }
  return p;
}

function isBlocked(addr: string): boolean {
  const f = family(addr);
  // Both the address as written and the IPv4 it reaches (a blocked IPv6 range stays blocked).
  return ALWAYS_BLOCKED.check(f.addr, f.type) || (net.isIPv6(addr) && ALWAYS_BLOCKED.check(addr, "ipv6"));
}

function covered(p: Policy, addr: string): boolean {
  if (!p.hasIps) return false;
  const f = family(addr);
  return p.ips.check(f.addr, f.type);
}

async function resolve(host: string, noun: string): Promise<string[]> {
  if (net.isIP(host)) return [host];
  try {
    const found = await (load("node:dns") as typeof Dns).promises.lookup(host, { all: true, verbatim: true });
    return found.map((a) => a.address);
  } catch (e: unknown) {
    // ENOTFOUND can be a DNS outage as well as a typo: let the retries decide.
    throw new TransientError("download_failed", `cannot resolve ${noun} ${host}: ${(e as Error).message}`, { cause: e });
  }
}

/** Whose list a check is made against, for the error: the dump download's by default, the registry client's too. */
export interface PolicyName {
  noun: string;
  variable: string;
}
const DUMP_POLICY: PolicyName = { noun: "dump host", variable: "ALLOWED_DUMP_HOSTS" };

function denied(host: string, detail: string, who: PolicyName): PermanentError {
  return new PermanentError("host_not_allowed", `${who.noun} ${host} is not allowed (${detail}); list it in ${who.variable} to allow it`);
}

/**
 * Resolves when `url`'s host may be fetched under `allowed` (the
 * ALLOWED_DUMP_HOSTS entries), with the addresses it checked: connect to one
 * of those (pinnedFetch), so that a second resolution cannot hand the
 * connection another address. Empty for a host the operator listed by exact
 * name (nothing was checked; any address it resolves to is fine). Throws
 * PermanentError("host_not_allowed") naming the host and the variable
 * otherwise; a name that cannot be resolved is a TransientError("download_failed").
 */
export async function checkHostAllowed(url: URL, allowed: string[], who: PolicyName = DUMP_POLICY): Promise<string[]> {
  const host = normalizeHost(url.hostname);
  if (!host) throw denied("(empty)", "the URL has no host", who);
  const p = parsePolicy(allowed);
  const listed = p.names.size > 0 || p.pinned.size > 0 || p.suffixes.length > 0 || p.hasIps || p.anyName;
  if (p.names.has(host)) return [];
  const port = url.port ? Number(url.port) : url.protocol === "https:" ? 443 : 80;
  if (p.pinned.get(host)?.has(port)) return [];

  const addrs = await resolve(host, who.noun);
  if (addrs.length === 0) throw new TransientError("download_failed", `${who.noun} ${host} resolved to no address`);
  const wildcard = p.anyName || p.suffixes.some((s) => host.endsWith(s) && host.length > s.length);
  if (!listed || wildcard) {
    const bad = addrs.find((a) => isBlocked(a) && !covered(p, a));
    if (bad) {
      const what = bad === host ? "a loopback, link-local, metadata or unspecified address" : `it resolves to ${bad}, a loopback, link-local, metadata or unspecified address`;
      throw denied(host, what, who);
    }
    return addrs;
  }
  const outside = addrs.find((a) => !covered(p, a));
  if (outside) throw denied(host, outside === host ? "not in the list" : `not in the list, and it resolves to ${outside}`, who);
  return addrs;
}

function inside(root: string, p: string): boolean {
  const rel = path.relative(root, p);
  return rel === "" ? false : !rel.startsWith("..") && !path.isAbsolute(rel);
}

/**
 * Opens `file` when it lies inside one of `roots` (ALLOWED_FILE_ROOTS) and
 * returns the open handle with its real path. The check is made on the
 * opened handle, not the name: the handle must be a regular file, and where
 * it really is comes from /proc/self/fd (symlinks resolved by the kernel at
 * the open), so swapping the name for a symlink after the check cannot make
 * the worker read another file. Everything after reads the handle.
 *
 * A path outside every root is PermanentError("host_not_allowed") naming
 * ALLOWED_FILE_ROOTS, checked before touching the file so that its
 * existence is not revealed; a missing file is dump_not_found, a FIFO or
 * device dump_not_found (not a regular file: opened with O_NONBLOCK, so it
 * cannot block), a symlink loop invalid_input. The caller closes the handle.
 */
export async function openAllowedFile(file: string, roots: string[]): Promise<{ handle: fs.FileHandle; real: string }> {
  const abs = path.resolve(file);
  const notAllowed = () =>
    new PermanentError(
      "host_not_allowed",
      roots.length === 0
        ? `dump file ${abs} is not allowed: ALLOWED_FILE_ROOTS is empty, so cfs:// and file:// dumps are refused`
        : `dump file ${abs} is outside ALLOWED_FILE_ROOTS (${roots.join(", ")})`,
    );
  const resolvedRoots = roots.map((r) => path.resolve(r));
  if (!resolvedRoots.some((r) => inside(r, abs))) throw notAllowed();

  let handle: fs.FileHandle;
  try {
    handle = await fs.open(abs, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  } catch (e: unknown) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") throw new PermanentError("dump_not_found", `dump file ${abs} does not exist`, { cause: e });
    if (code === "ELOOP") throw new PermanentError("invalid_input", `dump file ${abs} is a symlink loop`, { cause: e });
    if (code === "ENXIO") throw new PermanentError("dump_not_found", `dump path ${abs} is not a regular file`, { cause: e });
    throw new TransientError("download_failed", `cannot read dump file ${abs}: ${(e as Error).message}`, { cause: e });
  }
  try {
    if (!(await handle.stat()).isFile()) throw new PermanentError("dump_not_found", `dump path ${abs} is not a regular file`);
    const real = await fs.readlink(`/proc/self/fd/${handle.fd}`);
    // A symlink inside a root may point anywhere: check where the opened file really is.
    const realRoots = await Promise.all(resolvedRoots.map((r) => fs.realpath(r).catch(() => r)));
    if (!realRoots.some((r) => inside(r, real)) && !resolvedRoots.some((r) => inside(r, real))) throw notAllowed();
    return { handle, real };
  } catch (e: unknown) {
    await handle.close();
    throw e;
  }
}
