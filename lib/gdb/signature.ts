/**
 * Crash signature: the crash thread's top frames from the crash frame down,
 * normalized so that the same bug hashes the same across pods, builds, ASLR
 * bases, glibc CPU variants and Rust compiler versions.
 *
 * Normalization of one frame (each step is a fact about how the name is
 * printed, never about the bug):
 * - glibc's hidden alias prefix `__GI_` is dropped, and with it the `__` of
 *   the alias it names (`__GI___poll` -> `poll`); `__libc_<syscall>`
 *   wrappers become the syscall name (`__GI___libc_write` -> `write`).
 *   A bare `__poll` stays as it is: that prefix is part of a real symbol.
 * - glibc's CPU-variant suffixes are dropped (`__memmove_avx_unaligned_erms`
 *   -> `memmove`, `__strlen_evex` -> `strlen`): which variant ran depends on
 *   the machine, not the bug.
 * - symbol versions (`@@GLIBC_2.3.2`) are dropped.
 * - Rust: legacy-mangled names are decoded (`_ZN4core9panicking9panic_fmt17h..E`,
 *   `_$LT$alloc..boxed..Box$LT$F$GT$$GT$`), and hashes (`::h0123456789abcdef`)
 *   are dropped: they change with every compiler/dependency version.
 * - a demangled parameter list (`f(int, char const*)`, printed when there is
 *   no debug info) and a leading return type are dropped, so a frame reads the
 *   same with and without debug info. Template arguments are kept: `vector<int>`
 *   and `vector<char>` are different code.
 * Which frames: the crash frame, then below it the program's own ("in-app",
 * lib/gdb/inApp.ts) frames only, when there is any: the system libraries
 * below the program's code (libc's start_thread, clone3) depend on the
 * machine's libc build and debug info, not on the bug. A crash entirely in
 * system code keeps its system frames. A recursion counts once: a frame
 * repeating one of the frames already taken (a cycle of a deep recursion)
 * ends the signature, so every overflow of one recursion hashes the same
 * wherever the guard page was hit.
 *
 * - an unsymbolized frame becomes `<module>+0x<offset>` when the module map
 *   is known (offset from the module's load address: the same for every ASLR
 *   base), else `??@<library basename>` (or `??`). An absolute address is
 *   never part of the signature.
 *
 * Operators extend the rules without a release (lib/gdb/groupingRules.ts,
 * SIGNATURE_RULES): frames to skip, frames that are or are not in-app,
 * max_frames. explainSignature() is the one function that applies all of the
 * above, frame by frame, and says which rule kept or dropped each frame
 * (`coresight-worker signature explain` prints it); signatureOf() is its
 * signature.
 */
import { createHash } from "node:crypto";
import type { Frame, Signature, Thread } from "../result.js";
import { crashFrameIndex, stripParameters, unwoundLength } from "./crash.js";
import { DEFAULT_GROUPING_RULES, DEFAULT_SIGNATURE_FRAMES, type GroupingRules } from "./groupingRules.js";
import { isInApp } from "./inApp.js";

export { DEFAULT_SIGNATURE_FRAMES } from "./groupingRules.js";

/** Signature of a thread; null when the thread has no frames. */
export interface SignatureOptions {
  /** Frames taken at most; overrides the rules' max_frames. */
  maxFrames?: number;
  /**
   * The mapped module holding an address (from the core's module list), so
   * an unsymbolized frame reads `<module basename>+0x<offset>`: stable across
   * ASLR, and different for different crash sites in the same module.
   */
  moduleAt?: (address: string) => { path: string; start: string | null } | null | undefined;
  /** The crashed program's path: its frames are in-app wherever it is installed. */
  executable?: string | null;
  /** Another process sent the signal: the signature starts below libc's blocking calls, as the crash frame does. */
  sentByAnotherProcess?: boolean;
  /** The operator's grouping rules (SIGNATURE_RULES); default: none, 5 frames. */
  rules?: GroupingRules;
}

/** What explainSignature() decided for one frame of the thread. */
export interface FrameStep {
  index: number;
  /** The frame as it reads in a signature. */
  text: string;
  /** In the signature. */
  kept: boolean;
  /** Which rule kept or dropped it, in words (`signature explain` prints it). */
  reason: string;
}

export interface SignatureExplanation {
  /** One step per frame of the thread, in order. */
  steps: FrameStep[];
  signature: Signature | null;
}

export function signatureOf(thread: Thread, opts: SignatureOptions = {}): Signature | null {
  return explainSignature(thread, opts).signature;
}

/**
 * Whether a frame is the program's own: the operator's not_in_app rules,
 * then in_app rules, then the built-in rule (lib/gdb/inApp.ts). `rule`
 * names the operator's rule that decided, null for the built-in one.
 */
export function inAppOf(f: Frame, opts: SignatureOptions = {}): { inApp: boolean; rule: string | null } {
  const rules = opts.rules ?? DEFAULT_GROUPING_RULES;
  if (rules.inApp.length > 0 || rules.notInApp.length > 0) {
    const subject = matchSubject(f, opts);
    const not = rules.notInApp.find((m) => m.matches(subject));
    if (not) return { inApp: false, rule: not.name };
    const yes = rules.inApp.find((m) => m.matches(subject));
    if (yes) return { inApp: true, rule: yes.name };
  }
  return { inApp: isInApp(f, opts.executable ?? null), rule: null };
}

function matchSubject(f: Frame, opts: SignatureOptions): { text: string; module: string | null } {
  return { text: normalizeFrame(f, opts.moduleAt), module: f.library ?? (f.signal_handler ? null : (opts.executable ?? null)) };
}

/**
 * The signature of a thread and, frame by frame, why each frame is in it or
 * not: the one pure function that decides grouping (see the module doc for
 * the rules it applies, and lib/gdb/groupingRules.ts for the operator's).
 */
export function explainSignature(thread: Thread, opts: SignatureOptions = {}): SignatureExplanation {
  const rules = opts.rules ?? DEFAULT_GROUPING_RULES;
  const max = Math.max(1, opts.maxFrames ?? rules.maxFrames ?? DEFAULT_SIGNATURE_FRAMES);
  const frames = thread.frames;
  const start = crashFrameIndex(frames, { sentByAnotherProcess: opts.sentByAnotherProcess ?? false });
  const reasons = new Map<number, { kept: boolean; reason: string }>();
  const texts = frames.map((f) => normalizeFrame(f, opts.moduleAt));
  if (start === -1) return { steps: [], signature: null };
  const end = unwoundLength(frames);
  const above = opts.sentByAnotherProcess
    ? "above the crash frame: where the signal from another process found the thread (libc's blocking call)"
    : "above the crash frame: signal, abort, assert or panic machinery";
  for (let i = 0; i < start; i++) reasons.set(i, { kept: false, reason: above });
  for (let i = end; i < frames.length; i++) reasons.set(i, { kept: false, reason: "not unwound: gdb read the signal stack below Go's signal trampoline" });
  const below: Candidate[] = [];
  for (let i = start; i < end; i++) {
    const f = frames[i]!;
    // Thread and process start-up frames say how the thread began, not
    // where it crashed; past the crash frame they only add noise.
    if (i > start && isStartupFrame(f)) {
      reasons.set(i, { kept: false, reason: "thread start-up frame: the signature ends here" });
      for (let j = i + 1; j < end; j++) reasons.set(j, { kept: false, reason: "below the thread start-up frame" });
      break;
    }
    const skip = rules.skip.find((m) => m.matches(matchSubject(f, opts)));
    if (skip) {
      reasons.set(i, { kept: false, reason: `skipped by ${skip.name}` });
      continue;
    }
    below.push({ i, text: texts[i]!, ...inAppOf(f, opts) });
  }
  const appOnly = below.filter((c) => c.inApp);
  // The crash frame itself counts even in a system library (a fault inside
  // memcpy is not one in its caller), except in a recursion: which frame hit
  // the guard page (the recursive function or a memset it called) is chance.
  const withCrash = below.filter((c, k) => k === 0 || c.inApp);
  const app = take(appOnly, max);
  const chosen = appOnly.length === 0 ? take(below, max) : app.cycleFrom !== null ? app : take(withCrash, max);
  const used = new Set(chosen.used);
  for (const c of below) {
    if (used.has(c.i)) {
      const why =
        c.i === start
          ? "crash frame"
          : appOnly.length === 0
            ? "no frame is in-app: system frames kept"
            : !c.inApp
              ? "first frame left: stands for the skipped crash frame"
              : c.rule
                ? `in-app by ${c.rule}`
                : "in-app";
      reasons.set(c.i, { kept: true, reason: why });
    } else if (appOnly.length > 0 && !c.inApp) {
      reasons.set(c.i, {
        kept: false,
        reason: c.rule ? `not in-app by ${c.rule}` : c.i === start ? "not in-app, in a recursion: which frame hit the guard page is chance" : "not in-app: a system library",
      });
    } else if (chosen.cycleFrom !== null && c.i >= chosen.cycleFrom) {
      const repeat = texts.slice(start, chosen.cycleFrom).includes(c.text);
      reasons.set(c.i, { kept: false, reason: repeat ? "recursion: repeats a frame already taken (a cycle counts once)" : "below a recursion: the signature ends at the cycle" });
    } else {
      reasons.set(c.i, { kept: false, reason: `past the frame limit (${max})` });
    }
  }
  const steps = frames.map((_, i) => ({ index: frames[i]!.index, text: texts[i]!, ...(reasons.get(i) ?? { kept: false, reason: "not taken" }) }));
  if (chosen.frames.length === 0) return { steps, signature: null };
  const text = chosen.frames.join(" | ");
  return { steps, signature: { text, hash: hashOf(text), frames: chosen.frames } };
}

interface Candidate {
  i: number;
  text: string;
  inApp: boolean;
  rule: string | null;
}

/**
 * The first `max` normalized frames; a recursion is taken once, starting at
 * its smallest frame (where in the cycle the guard page was hit is chance).
 * `used`: the positions of the frames taken; `cycleFrom`: where the first
 * repeat was, null without one.
 */
function take(list: Candidate[], max: number): { frames: string[]; used: number[]; cycleFrom: number | null } {
  const frames: string[] = [];
  const used: number[] = [];
  for (const c of list) {
    const seen = c.text.startsWith("??") ? -1 : frames.indexOf(c.text);
    if (seen !== -1) {
      const r = seen + canonicalRotation(frames.slice(seen));
      const rotate = <T>(xs: T[]): T[] => [...xs.slice(0, seen), ...xs.slice(r), ...xs.slice(seen, r)].slice(0, max);
      return { frames: rotate(frames), used: rotate(used), cycleFrom: c.i };
    }
    if (frames.length >= max) break;
    frames.push(c.text);
    used.push(c.i);
  }
  return { frames, used, cycleFrom: null };
}

/** Where a cycle of frames starts when rotated to its smallest frame (so every phase of one recursion reads the same). */
function canonicalRotation(cycle: string[]): number {
  let best = 0;
  for (let i = 1; i < cycle.length; i++) if (cycle[i]! < cycle[best]!) best = i;
  return best;
}

const STARTUP = new Set([
  "start_thread",
  "clone",
  "clone3",
  "__clone",
  "__clone3",
  "__clone_internal",
  "thread_start",
  "_start",
  "__libc_start_main",
  "__libc_start_call_main",
  "__libc_start_main_impl",
  "__libc_start_main_alias_2",
  "__start",
  "_dl_start_user",
  // Go: the main goroutine starts in runtime.main, every goroutine returns to runtime.goexit, threads start in mstart.
  "runtime.main",
  "runtime.goexit",
  "runtime.mstart",
  "runtime.mstart0",
  "runtime.mstart1",
  "runtime.rt0_go",
  "runtime.clone",
]);

/** Thread/process entry frames (glibc's start_thread, clone3, _start, ...). */
function isStartupFrame(f: Frame): boolean {
  if (f.function === null) return false;
  const name = normalizeFunction(f.function);
  return STARTUP.has(name) || STARTUP.has(name.replace(/^__GI_/, "")) || /^std::sys::(pal::)?unix::thread::Thread::new::thread_start/.test(name);
}

/** First 16 hex characters of the SHA-256 of the signature text. */
export function hashOf(text: string): string {
  return createHash("sha256").update(text, "utf8").digest("hex").slice(0, 16);
}

/** One frame as it appears in a signature. */
export function normalizeFrame(f: Frame, moduleAt?: SignatureOptions["moduleAt"]): string {
  if (f.signal_handler) return "<signal handler called>";
  if (f.function === null && f.address && moduleAt) {
    const m = moduleAt(f.address);
    if (m?.start) {
      const offset = BigInt(f.address) - BigInt(m.start);
      if (offset >= 0n) return `${basename(m.path)}+0x${offset.toString(16)}`;
    }
  }
  if (f.function === null) {
    const lib = f.library ? basename(f.library) : null;
    return lib ? `??@${lib}` : "??";
  }
  return normalizeFunction(f.function);
}

function basename(path: string): string {
  const i = path.lastIndexOf("/");
  return i === -1 ? path : path.slice(i + 1);
}

/** Syscall wrappers glibc exports as `__libc_<name>` aliases. */
const LIBC_WRAPPERS = new Set([
  "read",
  "write",
  "open",
  "open64",
  "openat",
  "openat64",
  "close",
  "pread",
  "pread64",
  "pwrite",
  "pwrite64",
  "recv",
  "recvfrom",
  "recvmsg",
  "send",
  "sendto",
  "sendmsg",
  "accept",
  "accept4",
  "connect",
  "poll",
  "ppoll",
  "select",
  "pselect",
  "nanosleep",
  "waitpid",
  "wait",
  "wait4",
  "fcntl",
  "fcntl64",
  "fsync",
  "fdatasync",
  "msync",
  "pause",
  "sigsuspend",
  "sigwait",
  "epoll_wait",
  "epoll_pwait",
  "readv",
  "writev",
  "lseek",
  "lseek64",
  "malloc",
  "free",
  "calloc",
  "realloc",
  "memalign",
  "valloc",
  "pvalloc",
  "fork",
  "system",
  "sigaction",
]);

/** glibc multiarch variant tokens (sysdeps/x86_64/multiarch, powerpc, aarch64, s390). */
const CPU_TOKENS = new Set([
  "sse2",
  "sse3",
  "ssse3",
  "sse4",
  "sse4_1",
  "sse4_2",
  "sse42",
  "avx",
  "avx2",
  "avx512",
  "avx512f",
  "avx512bw",
  "avx512vl",
  "evex",
  "evex256",
  "evex512",
  "erms",
  "rtm",
  "vex",
  "unaligned",
  "aligned",
  "movbe",
  "no_bsf",
  "bsf",
  "back",
  "fast",
  "nocacheline",
  "power4",
  "power5",
  "power6",
  "power7",
  "power8",
  "power9",
  "power10",
  "ppc",
  "ppc64",
  "cell",
  "a2",
  "thunderx",
  "thunderx2",
  "falkor",
  "kunpeng",
  "emag",
  "a64fx",
  "generic",
  "mops",
  "sve",
  "neon",
  "asimd",
  "zva",
  "z900",
  "z10",
  "z13",
  "z15",
  "z196",
  "vx",
  "vxe",
  "arch13",
  "ifunc",
  "lasx",
  "lsx",
]);

export function normalizeFunction(raw: string): string {
  let s = raw.trim();
  s = decodeRustLegacy(s);
  // Symbol version: "pthread_cond_wait@@GLIBC_2.3.2".
  const at = s.search(/@@?[A-Za-z_][\w.]*$/);
  if (at > 0) s = s.slice(0, at);
  s = stripRustHash(s);
  s = stripParameters(s);
  // glibc internal aliases.
  if (s.startsWith("__GI_")) {
    s = s.slice(5);
    if (s.startsWith("__libc_") && LIBC_WRAPPERS.has(s.slice(7))) s = s.slice(7);
    else if (/^__[A-Za-z]\w*$/.test(s)) s = s.slice(2);
  } else if (s.startsWith("__libc_") && LIBC_WRAPPERS.has(s.slice(7))) {
    s = s.slice(7);
  }
  s = stripCpuVariant(s);
  // Never an address, even one embedded in a name.
  s = s.replace(/0x[0-9a-fA-F]+/g, "0x?");
  return s;
}

function stripCpuVariant(s: string): string {
  if (!s.startsWith("__") || !/^[A-Za-z0-9_]+$/.test(s)) return s;
  const parts = s.slice(2).split("_");
  // Find the first token (after the function name proper) that is a CPU variant.
  for (let i = 1; i < parts.length; i++) {
    const one = parts[i]!;
    const two = i + 1 < parts.length ? `${one}_${parts[i + 1]}` : "";
    if (CPU_TOKENS.has(one) || (two && CPU_TOKENS.has(two))) {
      return parts.slice(0, i).join("_");
    }
  }
  return s;
}

/** Drops `::h<16 hex>` (v0 legacy hash) wherever it ends a path segment. */
function stripRustHash(s: string): string {
  return s.replace(/::h[0-9a-f]{16}(?=$|::|>|\s)/g, "");
}

/**
 * Legacy Rust mangling: `_ZN4core9panicking9panic_fmt17h0123456789abcdefE`
 * -> `core::panicking::panic_fmt::h0123456789abcdef`, and the `$LT$`/`..`
 * escapes gdb leaves in names when it does not demangle them.
 */
export function decodeRustLegacy(s: string): string {
  let out = s;
  if (out.startsWith("_ZN") && out.endsWith("E")) {
    const parts: string[] = [];
    let i = 3;
    const end = out.length - 1;
    let ok = true;
    while (i < end) {
      let j = i;
      while (j < end && out.charCodeAt(j) >= 48 && out.charCodeAt(j) <= 57) j++;
      if (j === i) {
        ok = false;
        break;
      }
      const len = Number(out.slice(i, j));
      if (len <= 0 || j + len > end) {
        ok = false;
        break;
      }
      parts.push(out.slice(j, j + len));
      i = j + len;
    }
    if (ok && parts.length > 0) out = parts.join("::");
  }
  if (out.includes("$") || out.includes("..")) {
    if (out.startsWith("_$")) out = out.slice(1);
    out = out
      .replace(/\$LT\$/g, "<")
      .replace(/\$GT\$/g, ">")
      .replace(/\$RF\$/g, "&")
      .replace(/\$BP\$/g, "*")
      .replace(/\$LP\$/g, "(")
      .replace(/\$RP\$/g, ")")
      .replace(/\$C\$/g, ",")
      .replace(/\$SP\$/g, "@")
      .replace(/\$u([0-9a-f]{2})\$/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)))
      .replace(/\.\./g, "::");
  }
  return out;
}
