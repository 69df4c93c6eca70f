/**
 * `eu-unstrip -n --core=FILE` lists every module elfutils recognizes in a
 * core, with the build-id it read from the module's first page in the core:
 *
 *   0x400000+0x2000 abcd…@0x400284 /path/exe - /path/exe
 *   START+SIZE      BUILDID@NOTEADDR FILE DEBUGFILE NAME
 *
 * FILE/DEBUGFILE are what elfutils found on *this* machine ("-" none, "." the
 * image in the core itself); they say nothing about the crashed container and
 * are not used for resolution. NAME is the link_map name or the mapped path.
 */
import { execa } from "execa";
import { toError } from "../errors.js";

export interface UnstripModule {
  start: number;
  end: number;
  buildId: string | null;
  /** Address of the build-id note in the process, when printed. */
  buildIdAddress: number | null;
  file: string | null;
  debugFile: string | null;
  name: string;
}

const LINE = /^0x([0-9a-f]+)\+0x([0-9a-f]+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(.+)$/i;

/** Parses `eu-unstrip -n` output; lines that do not fit the format are skipped. */
export function parseUnstripList(text: string): UnstripModule[] {
  const out: UnstripModule[] = [];
  for (const raw of text.split("\n")) {
    const m = LINE.exec(raw.trim());
    if (!m) continue;
    const start = parseInt(m[1]!, 16);
    const size = parseInt(m[2]!, 16);
    const [idText, at] = m[3]!.split("@");
    const buildId = idText && idText !== "-" && /^[0-9a-f]+$/i.test(idText) ? idText.toLowerCase() : null;
    const col = (s: string) => (s === "-" || s === "." ? null : s);
    out.push({
      start,
      end: start + size,
      buildId,
      buildIdAddress: at ? parseInt(at, 16) : null,
      file: col(m[4]!),
      debugFile: col(m[5]!),
      name: m[6]!.trim(),
    });
  }
  return out;
}

export class UnstripError extends Error {
  override name = "UnstripError";
}

/**
 * Runs `eu-unstrip -n --core=<core>`. Returns [] when elfutils recognizes no
 * module (it exits 1 with "No modules recognized", e.g. qemu-user cores that
 * dump no read-only pages). Throws UnstripError when eu-unstrip is missing or
 * fails otherwise.
 */
export async function listCoreModules(core: string, opts: { unstripPath?: string; signal?: AbortSignal; timeoutMs?: number } = {}): Promise<UnstripModule[]> {
  const bin = opts.unstripPath ?? "eu-unstrip";
  let r;
  try {
    // No debuginfo search path: looking up this machine's debug files costs
    // ~60 ms per core (it reads them) for a column we never use.
    r = await execa(bin, ["-n", `--core=${core}`, "--debuginfo-path=/dev/null/no-debuginfo-lookup"], {
      reject: false,
      timeout: opts.timeoutMs ?? 120_000,
      ...(opts.signal ? { cancelSignal: opts.signal } : {}),
      // Keep elfutils from looking anything up over the network on its own.
      env: { DEBUGINFOD_URLS: "" },
      stripFinalNewline: false,
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (e: unknown) {
    throw new UnstripError(`${bin} failed to start: ${toError(e).message}`, { cause: e });
  }
  if (r.failed && r.exitCode === undefined) {
    const why = (r as { code?: string }).code === "ENOENT" ? "not installed (apt-get install elfutils)" : r.shortMessage;
    throw new UnstripError(`${bin}: ${why}`);
  }
  if (r.exitCode !== 0) {
    if (/No modules recognized/i.test(r.stderr)) return [];
    throw new UnstripError(`${bin} exited ${r.exitCode}: ${r.stderr.trim().slice(0, 500)}`);
  }
  return parseUnstripList(r.stdout);
}
