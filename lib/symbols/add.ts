/**
 * Puts build outputs into a symbol store under their build-ids: what a CI
 * pipeline runs after building an image, so the worker can later symbolize a
 * crash of exactly that build.
 *
 *   file with code (not NOBITS)      -> <id>/executable
 *   file with .debug_info contents   -> <id>/debuginfo
 *
 * An unstripped binary is both; `objcopy --only-keep-debug` output is only
 * debuginfo; a stripped binary only executable.
 */
import { toError } from "../errors.js";
import { describeElf } from "../elf/buildId.js";
import { ET_CORE, NotElfError } from "../elf/file.js";
import type { StoreKind, SymbolStore } from "./store.js";

export interface AddedFile {
  file: string;
  build_id: string | null;
  kinds: StoreKind[];
  /** Why nothing was stored, when `kinds` is empty. */
  error?: string;
}

/** Stores each file; a file that cannot be stored is reported, not thrown, so one bad file does not stop a batch. */
export async function addToStore(files: string[], store: SymbolStore): Promise<AddedFile[]> {
  const out: AddedFile[] = [];
  for (const file of files) {
    try {
      const d = await describeElf(file);
      if (d.type === ET_CORE) {
        out.push({ file, build_id: null, kinds: [], error: "is a core dump, not a build output" });
        continue;
      }
      if (!d.buildId) {
        out.push({ file, build_id: null, kinds: [], error: "has no build-id (link with -Wl,--build-id)" });
        continue;
      }
      const kinds: StoreKind[] = [];
      if (d.hasCode) kinds.push("executable");
      if (d.hasDebugInfo) kinds.push("debuginfo");
      if (kinds.length === 0) {
        out.push({ file, build_id: d.buildId, kinds, error: "has neither code nor .debug_info" });
        continue;
      }
      for (const k of kinds) await store.put(d.buildId, k, file);
      out.push({ file, build_id: d.buildId, kinds });
    } catch (e: unknown) {
      const msg = e instanceof NotElfError ? "not an ELF file" : toError(e).message;
      out.push({ file, build_id: null, kinds: [], error: msg });
    }
  }
  return out;
}
