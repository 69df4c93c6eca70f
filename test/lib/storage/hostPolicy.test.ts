import fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "@jest/globals";
import { PermanentError } from "../../../lib/errors.js";
import { checkHostAllowed, openAllowedFile } from "../../../lib/storage/hostPolicy.js";

/** openAllowedFile's real path, its handle closed. */
async function checkFileAllowed(file: string, roots: string[]): Promise<string> {
  const { handle, real } = await openAllowedFile(file, roots);
  await handle.close();
  return real;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (e: unknown) {
    return e instanceof PermanentError ? e.code : `other: ${(e as Error).message}`;
  }
}

describe("checkHostAllowed", () => {
  const check = (url: string, allowed: string[]) => codeOf(checkHostAllowed(new URL(url), allowed));

  it.each([
    ["http://127.0.0.1:9000/b/k"],
    ["http://127.8.9.1/b/k"],
    ["http://[::1]:9000/b/k"],
    ["http://[::ffff:127.0.0.1]/b/k"],
    ["http://169.254.169.254/latest/meta-data/"],
    ["http://100.100.100.200/latest/meta-data/"],
    ["http://[fe80::1]/x"],
    ["http://0.0.0.0:9000/x"],
    ["http://localhost:9000/b/k"], // a DNS name resolving to 127.0.0.1
    // IPv6 spellings of internal IPv4 addresses (issue 9)
    ["http://[::127.0.0.1]/b/k"], // IPv4-compatible
    ["http://[::ffff:0:7f00:1]/b/k"], // IPv4-translated
    ["http://[::ffff:7f00:1]/b/k"], // IPv4-mapped, hex spelling
    ["http://[64:ff9b::7f00:1]/b/k"], // NAT64 well-known prefix
    ["http://[64:ff9b::169.254.169.254]/latest/meta-data/"],
    ["http://[64:ff9b:1::a9fe:a9fe]/latest/meta-data/"], // NAT64 local-use prefix
    ["http://[2002:7f00:1::]/b/k"], // 6to4 of 127.0.0.1
  ])("blocks %s by default", async (url) => {
    expect(await check(url, [])).toBe("host_not_allowed");
  });

  it("allows public and private addresses by default", async () => {
    expect(await check("http://10.1.2.3:9000/b/k", [])).toBe("ok");
    expect(await check("http://192.168.1.10/b/k", [])).toBe("ok");
    expect(await check("https://93.184.216.34/b/k", [])).toBe("ok");
  });

  it("allows loopback when listed, by IP, CIDR or exact name", async () => {
    expect(await check("http://127.0.0.1:9000/b/k", ["127.0.0.1"])).toBe("ok");
    expect(await check("http://127.0.0.2:9000/b/k", ["127.0.0.0/8"])).toBe("ok");
    expect(await check("http://localhost:9000/b/k", ["localhost"])).toBe("ok");
    expect(await check("http://[::1]:9000/b/k", ["::1"])).toBe("ok");
  });

  it("NAT64 and mapped forms of public addresses stay allowed", async () => {
    expect(await check("https://[64:ff9b::5db8:d822]/b/k", [])).toBe("ok");
    expect(await check("https://[::ffff:93.184.216.34]/b/k", [])).toBe("ok");
  });

  it("an entry may name a port: that host on that port only", async () => {
    expect(await check("http://localhost:9000/b/k", ["localhost:9000"])).toBe("ok");
    expect(await check("http://localhost:9001/b/k", ["localhost:9000"])).toBe("host_not_allowed");
    expect(await check("http://127.0.0.1:9000/b/k", ["127.0.0.1:9000"])).toBe("ok");
    expect(await check("http://127.0.0.1/b/k", ["127.0.0.1:9000"])).toBe("host_not_allowed");
    expect(await check("http://[::1]:9000/b/k", ["[0:0::1]:9000"])).toBe("ok");
    expect(await check("https://minio.internal/b/k", ["minio.internal:443"])).toBe("ok");
  });

  it("with a list, refuses everything not in it", async () => {
    expect(await check("http://10.1.2.3/b/k", ["minio.internal"])).toBe("host_not_allowed");
    expect(await check("http://127.0.0.2/b/k", ["127.0.0.1"])).toBe("host_not_allowed");
    expect(await check("http://10.1.2.3/b/k", ["10.0.0.0/8"])).toBe("ok");
  });

  it("checks what a wildcard-matched name resolves to", async () => {
    // localhost matches "*" but resolves to loopback: still blocked unless an IP entry covers it
    expect(await check("http://localhost/b/k", ["*"])).toBe("host_not_allowed");
    expect(await check("http://localhost/b/k", ["*", "127.0.0.0/8", "::1"])).toBe("ok");
  });

  it("names the host and ALLOWED_DUMP_HOSTS in the error", async () => {
    await expect(checkHostAllowed(new URL("http://169.254.169.254/x"), [])).rejects.toThrow(/169\.254\.169\.254.*ALLOWED_DUMP_HOSTS/);
  });
});

describe("checkFileAllowed", () => {
  let root: string;
  let allowed: string;
  let outside: string;
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), "hostpolicy-"));
    allowed = path.join(root, "cfs");
    outside = path.join(root, "secret");
    await fs.mkdir(allowed);
    await fs.mkdir(outside);
    await fs.writeFile(path.join(allowed, "core.1"), "x");
    await fs.writeFile(path.join(outside, "passwd"), "x");
    await fs.symlink(path.join(outside, "passwd"), path.join(allowed, "escape"));
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it("returns the real path of a file inside a root", async () => {
    expect(await checkFileAllowed(path.join(allowed, "core.1"), [allowed])).toBe(path.join(await fs.realpath(allowed), "core.1"));
  });
  it("refuses paths outside the roots, ../ tricks and symlinks out", async () => {
    expect(await codeOf(checkFileAllowed(path.join(outside, "passwd"), [allowed]))).toBe("host_not_allowed");
    expect(await codeOf(checkFileAllowed(path.join(allowed, "..", "secret", "passwd"), [allowed]))).toBe("host_not_allowed");
    expect(await codeOf(checkFileAllowed(path.join(allowed, "escape"), [allowed]))).toBe("host_not_allowed");
    expect(await codeOf(checkFileAllowed(allowed + "-sibling/core", [allowed]))).toBe("host_not_allowed");
  });
  it("refuses every file when no root is configured, naming ALLOWED_FILE_ROOTS", async () => {
    await expect(checkFileAllowed(path.join(allowed, "core.1"), [])).rejects.toThrow(/ALLOWED_FILE_ROOTS/);
  });
  it("reports a missing file inside a root as dump_not_found", async () => {
    expect(await codeOf(checkFileAllowed(path.join(allowed, "core.missing"), [allowed]))).toBe("dump_not_found");
  });
});
