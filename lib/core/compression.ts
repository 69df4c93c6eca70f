/**
 * Compression of dumps, detected by magic bytes (never by file name: CoreDog
 * names raw cores `core.<exe>.<pid>...`, other collectors gzip or zstd them).
 * Decompression streams: gzip through node:zlib, zstd through the `zstd`
 * binary (Node 20's zlib has no zstd), so a dump never sits in memory.
 */
import { spawn } from "node:child_process";
import { Duplex, PassThrough } from "node:stream";
import zlib from "node:zlib";
import { PermanentError } from "../errors.js";

export type Compression = "gzip" | "zstd" | "xz" | "bzip2";

/** Looks at the first bytes of a file; null means "not compressed". */
export function detectCompression(head: Uint8Array): Compression | null {
  const b = head;
  if (b.length >= 2 && b[0] === 0x1f && b[1] === 0x8b) return "gzip";
  if (b.length >= 4 && b[0] === 0x28 && b[1] === 0xb5 && b[2] === 0x2f && b[3] === 0xfd) return "zstd";
  if (b.length >= 6 && b[0] === 0xfd && b[1] === 0x37 && b[2] === 0x7a && b[3] === 0x58 && b[4] === 0x5a && b[5] === 0x00) return "xz";
  if (b.length >= 3 && b[0] === 0x42 && b[1] === 0x5a && b[2] === 0x68) return "bzip2";
  return null;
}

/**
 * A Duplex that decompresses `kind`. gzip and zstd are supported; xz and
 * bzip2 are recognized so that the error can say so (`unsupported_compression`).
 */
export function decompressor(kind: Compression, zstdPath = "zstd"): Duplex {
  if (kind === "gzip") return zlib.createGunzip();
  if (kind === "zstd") return zstdStream(zstdPath);
  throw new PermanentError("unsupported_compression", `${kind}-compressed dumps are not supported (gzip and zstd are)`);
}

function zstdStream(zstdPath: string): Duplex {
  const child = spawn(zstdPath, ["-d", "-c", "-q"], { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8");
  child.stderr.on("data", (d: string) => {
    if (stderr.length < 4096) stderr += d;
  });
  const out = new PassThrough();
  const duplex = Duplex.from({ writable: child.stdin, readable: out });
  child.stdout.pipe(out, { end: false });
  let stdoutEnded = false;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  const finish = () => {
    if (!stdoutEnded || !exit) return;
    if (exit.code === 0) out.end();
    else out.destroy(new PermanentError("not_a_core", `zstd could not decompress the dump: ${stderr.trim() || `exit ${exit.code ?? exit.signal}`}`));
  };
  child.stdout.on("end", () => {
    stdoutEnded = true;
    finish();
  });
  child.on("close", (code, signal) => {
    exit = { code, signal };
    finish();
  });
  child.on("error", (e) => {
    const missing = (e as NodeJS.ErrnoException).code === "ENOENT";
    out.destroy(missing ? new PermanentError("unsupported_compression", `zstd is not installed (${zstdPath}); cannot decompress a zstd dump`, { cause: e }) : e);
  });
  duplex.on("close", () => {
    if (child.exitCode === null) child.kill("SIGKILL");
  });
  return duplex;
}
