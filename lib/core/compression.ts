/**
 * Compression of dumps, detected by magic bytes (never by file name: CoreDog
 * names raw cores `core.<exe>.<pid>...`, other collectors gzip or zstd them).
 * Decompression streams, both from node:zlib (zstd since Node 22.15), so a
 * dump never sits in memory and no child process is spawned for it.
 */
import type { Duplex } from "node:stream";
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
 * A Duplex that decompresses `kind`. gzip and zstd are supported (both in
 * node:zlib); xz and bzip2 are recognized so that the error can say so
 * (`unsupported_compression`).
 */
export function decompressor(kind: Compression): Duplex {
  if (kind === "gzip") return zlib.createGunzip();
  if (kind === "zstd") return zlib.createZstdDecompress();
  throw new PermanentError("unsupported_compression", `${kind}-compressed dumps are not supported (gzip and zstd are)`);
}

/** True for the errors node:zlib raises on corrupt gzip or zstd input (codes Z_* and ZSTD_*). */
export function isDecompressionError(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  return typeof code === "string" && (code.startsWith("Z_") || code.startsWith("ZSTD_"));
}
