/**
 * The address signature of a core: what crashed, from the core alone, in a
 * few milliseconds and without symbols, so that a crash storm (one bad
 * release crash-looping hundreds of pods) can be recognized before gdb runs.
 *
 *   signal number (the first NT_PRSTATUS) + the crash thread's PC and return
 *   addresses (`eu-stack -q`, the first thread it prints: the kernel writes
 *   the signalled thread first) as <module build-id>+<offset in the module>
 *
 * Build-id + offset survives ASLR (every pod maps its modules elsewhere) and
 * changes with the build (a new release is a new crash until analyzed), so
 * two cores share a key exactly when the same binaries crashed at the same
 * code through the same calls. An address in no module (a JIT page, a
 * corrupt stack) is kept as "?": it still separates crashes by the frames
 * around it.
 *
 * Everything here degrades to "no signature" (null), never to a wrong one:
 * eu-stack missing or failing, no frame, a module without build-id on the
 * crash path. No signature means a full analysis.
 */
import { createHash } from "node:crypto";
import { execa } from "execa";
import type { CoreNotes } from "../elf/coreNotes.js";
import type { InventoryModule } from "../symbols/inventory.js";

/** Frames of the crash thread that make the key: deep enough to tell callers apart, shallow enough to ignore the stack's bottom. */
export const ADDRESS_FRAMES = 32;

export interface AddressSignature {
  /** The KV key: 32 hex digits of sha256 over `text`. */
  key: string;
  /** `v1 sig=<n> <frame>;<frame>;…`, each frame `<build-id>+0x<offset>` or `?`. */
  text: string;
}

/** The PCs of the first thread in `eu-stack -q` output (pure). */
export function firstThreadPcs(text: string): bigint[] {
  const pcs: bigint[] = [];
  let inThread = false;
  for (const line of text.split("\n")) {
    if (line.startsWith("TID ")) {
      if (inThread) break;
      inThread = true;
      continue;
    }
    if (!inThread) continue;
    const m = /^#\d+\s+0x([0-9a-f]+)/i.exec(line.trim());
    if (m) pcs.push(BigInt(`0x${m[1]}`));
  }
  return pcs;
}

/**
 * The signature of a crash thread's PCs against the core's modules (pure).
 * Null when there is no frame, or when a frame's module has no build-id (its
 * offset would not name a build).
 */
export function addressSignatureOf(pcs: bigint[], modules: InventoryModule[], signo: number | null): AddressSignature | null {
  if (pcs.length === 0) return null;
  const frames: string[] = [];
  for (const pc of pcs.slice(0, ADDRESS_FRAMES)) {
    const m = modules.find((x) => x.start !== null && x.end !== null && pc >= BigInt(x.start) && pc < BigInt(x.end));
    if (!m) {
      frames.push("?");
      continue;
    }
    if (m.build_id === null) return null;
    frames.push(`${m.build_id}+0x${(pc - BigInt(m.start!)).toString(16)}`);
  }
  const text = `v1 sig=${signo ?? "?"} ${frames.join(";")}`;
  return { key: createHash("sha256").update(text).digest("hex").slice(0, 32), text };
}

export interface CoreAddressSignatureOptions {
  euStackPath?: string;
  signal?: AbortSignal;
  timeoutMs?: number;
}

/**
 * Runs eu-stack on `core` and returns its address signature, or null (see
 * the module comment). eu-stack gets no debuginfo path and no debuginfod:
 * addresses are all it is asked for.
 */
export async function coreAddressSignature(core: string, notes: CoreNotes, modules: InventoryModule[], opts: CoreAddressSignatureOptions = {}): Promise<AddressSignature | null> {
  const r = await execa(opts.euStackPath ?? "eu-stack", ["-q", "-n", String(ADDRESS_FRAMES), `--core=${core}`, "--debuginfo-path=/dev/null/no-debuginfo-lookup"], {
    reject: false,
    timeout: opts.timeoutMs ?? 30_000,
    ...(opts.signal ? { cancelSignal: opts.signal } : {}),
    env: { DEBUGINFOD_URLS: "" },
    maxBuffer: 16 * 1024 * 1024,
  });
  // 1 = some frames with non-fatal errors (a truncated bottom): the top is still there.
  if (r.exitCode !== 0 && r.exitCode !== 1) return null;
  return addressSignatureOf(firstThreadPcs(r.stdout), modules, notes.signo);
}
