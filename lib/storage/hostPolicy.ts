/**
 * Which hosts and directories a dump may come from (SSRF guard).
 *
 * A dump URL comes from an event that anyone with the agent token (or access
 * to the subject) can publish, so the worker must not be turned into a proxy
 * that reads its own cloud metadata service or a port on its loopback.
 *
 * ALLOWED_DUMP_HOSTS entries: exact host names (`minio.internal`), wildcards
 * (`*.amazonaws.com`, also matching `.amazonaws.com`), IP addresses and CIDRs
 * (`10.0.0.0/8`, `fd00::/8`), `*` for any host name.
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
 * Known limit: fetch resolves the name again when it connects, so a DNS
 * server that answers differently within milliseconds (rebinding) is not
 * stopped here; pin hosts by IP/CIDR where that matters.
 */
import dns from "node:dns";
import { constants as fsConstants } from "node:fs";
import fs from "node:fs/promises";
import net from "node:net";
import path from "node:path";
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
  suffixes: string[];
  anyName: boolean;
  ips: net.BlockList;
  hasIps: boolean;
}

function normalizeHost(h: string): string {
  return h.trim().toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");
}

/** ::ffff:127.0.0.1 is 127.0.0.1: check it as IPv4 so a mapped address cannot slip through. */
function family(addr: string): { addr: string; type: "ipv4" | "ipv6" } {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(addr);
  if (mapped) return { addr: mapped[1]!, type: "ipv4" };
  return { addr, type: net.isIPv6(addr) ? "ipv6" : "ipv4" };
}

function parsePolicy(allowed: string[]): Policy {
  const p: Policy = { names: new Set(), suffixes: [], anyName: false, ips: new net.BlockList(), hasIps: false };
  for (const raw of allowed) {
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
  return ALWAYS_BLOCKED.check(f.addr, f.type);
}

function covered(p: Policy, addr: string): boolean {
  if (!p.hasIps) return false;
  const f = family(addr);
  return p.ips.check(f.addr, f.type);
}

async function resolve(host: string): Promise<string[]> {
  if (net.isIP(host)) return [host];
  try {
    const found = await dns.promises.lookup(host, { all: true, verbatim: true });
    return found.map((a) => a.address);
  } catch (e: unknown) {
    // ENOTFOUND can be a DNS outage as well as a typo: let the retries decide.
    throw new TransientError("download_failed", `cannot resolve dump host ${host}: ${(e as Error).message}`, { cause: e });
  }
}

function denied(host: string, detail: string): PermanentError {
  return new PermanentError(
    "host_not_allowed",
    `dump host ${host} is not allowed (${detail}); list it in ALLOWED_DUMP_HOSTS to allow it`,
  );
}

/**
 * Resolves when `url`'s host may be fetched under `allowed` (the
 * ALLOWED_DUMP_HOSTS entries); throws PermanentError("host_not_allowed")
 * naming the host and the variable otherwise. A name that cannot be resolved
 * is a TransientError("download_failed").
 */
export async function checkHostAllowed(url: URL, allowed: string[]): Promise<void> {
  const host = normalizeHost(url.hostname);
  if (!host) throw denied("(empty)", "the URL has no host");
  const p = parsePolicy(allowed);
  const listed = p.names.size > 0 || p.suffixes.length > 0 || p.hasIps || p.anyName;
  if (p.names.has(host)) return;

  const addrs = await resolve(host);
  if (addrs.length === 0) throw new TransientError("download_failed", `dump host ${host} resolved to no address`);
  const wildcard = p.anyName || p.suffixes.some((s) => host.endsWith(s) && host.length > s.length);
  if (!listed || wildcard) {
    const bad = addrs.find((a) => isBlocked(a) && !covered(p, a));
    if (bad) {
      const what = bad === host ? "a loopback, link-local, metadata or unspecified address" : `it resolves to ${bad}, a loopback, link-local, metadata or unspecified address`;
      throw denied(host, what);
    }
    return;
  }
  const outside = addrs.find((a) => !covered(p, a));
  if (outside) throw denied(host, outside === host ? "not in the list" : `not in the list, and it resolves to ${outside}`);
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
