/**
 * Result schema v1: the document the worker stores for every analysis, the
 * same one `coresight-worker analyze --json` prints. snake_case on the wire,
 * like the CoreDog event it answers. `make schema` exports it as JSON
 * Schema to docs/result.schema.json.
 *
 * Glossary (use these words, and only these, in names and logs):
 * - event: one CloudEvent `coredog.coredump.uploaded` as CoreDog sends it.
 * - job: the work of analyzing one event's dump, identified by `analysis_id`.
 * - attempt: one delivery of the event's message to a worker (1-based).
 * - dump: the core file (possibly gzip/zstd compressed) the event points at.
 * - module: an ELF object mapped in the crashed process (executable or library).
 * - thread: one thread of the crashed process as gdb numbers it.
 * - frame: one entry of a thread's backtrace, #0 innermost.
 * - crash thread: the thread that received the fatal signal.
 * - crash frame: the first frame of the crash thread outside signal, abort,
 *   assert, C++ terminate/throw and Rust panic machinery: the user's code.
 * - signature: normalized top frames of the crash thread plus a stable hash
 *   that groups the same crash across pods, builds and ASLR bases.
 * - image: the crashed container's OCI image, as the event names it
 *   (`data.image`); its digest is what the reference resolved to.
 * - layer: one blob of an image (a tar changeset), named by its digest.
 * - address signature: the crash thread's addresses as module build-id +
 *   offset, from the core alone before gdb (lib/dedup/): the same binaries
 *   crashing at the same code through the same calls.
 */
import * as z from "zod";
import { ErrorCodeSchema } from "./errors.js";
import { SCHEMA_VERSION } from "./failedResult.js";

// Here too, for code that has the schema anyway; code that does not need it imports them from failedResult.ts.
export { failedResult, SCHEMA_VERSION } from "./failedResult.js";

export const FrameSchema = z.object({
  index: z.number().int().nonnegative(),
  /** Program counter as 0x-hex text; null when gdb printed none (frame #0, inlined). */
  address: z.string().nullable(),
  /** Function name as gdb printed it; null for `??` or an empty name. */
  function: z.string().nullable(),
  /** Raw argument text between the parentheses, null when absent. */
  args: z.string().nullable(),
  file: z.string().nullable(),
  line: z.number().int().nullable(),
  /** Shared object from `from /lib/x.so` (or a library in the `at` slot); analyze fills in the module of any library frame from the core's map (gdb names none for a frame it has DWARF for). */
  library: z.string().nullable(),
  inline: z.boolean(),
  /** `<signal handler called>` pseudo-frame. */
  signal_handler: z.boolean().default(false),
  /** The program's own code, not a system library (lib/gdb/inApp.ts): what signatures are built from. */
  in_app: z.boolean().optional(),
  /** `bt full` locals, verbatim lines, when present. */
  locals: z.array(z.string()).optional(),
});
export type Frame = z.infer<typeof FrameSchema>;

export const ThreadSchema = z.object({
  number: z.number().int(),
  lwp: z.number().int().nullable(),
  /** pthread id as printed by gdb (`Thread 0x7f…`), null when absent. */
  thread_id: z.string().nullable().default(null),
  name: z.string().nullable().default(null),
  crashed: z.boolean(),
  frames: z.array(FrameSchema),
  /** `Backtrace stopped: …` text when gdb gave up unwinding. */
  backtrace_stopped: z.string().nullable().default(null),
  /** The frame limit (GDB_MAX_FRAMES, `--max-frames`) cut this thread: it has more frames than listed. */
  frames_truncated: z.boolean().optional(),
});
export type Thread = z.infer<typeof ThreadSchema>;

/** A goroutine of a Go core (the Go probe reads them from runtime.allgs; dead ones are not listed). */
export const GoroutineSchema = z.object({
  goid: z.number().int(),
  /** idle, runnable, running, syscall, waiting, copystack or preempted (runtime/runtime2.go). */
  status: z.string(),
  /** Why it waits ("chan receive", "select", ...), from the core's own runtime; null when not waiting or unknown. */
  wait_reason: z.string().nullable(),
  /** The goroutine that panicked and killed the process (its frames are the crash thread's below `<signal handler called>`). */
  panicking: z.boolean(),
  /** Its stack from its saved pc, innermost first, at most 16 frames. */
  frames: z.array(FrameSchema),
});
export type Goroutine = z.infer<typeof GoroutineSchema>;

export const SignalSchema = z.object({
  name: z.string().nullable(),
  number: z.number().int().nullable(),
  /** si_code name, e.g. SEGV_MAPERR, or the number as text when unknown. */
  code: z.string().nullable(),
  fault_address: z.string().nullable(),
  description: z.string().nullable(),
  /**
   * Who sent the signal, from siginfo's si_pid/si_uid and the core's own pid:
   * `self` (kill/raise/abort in the process), `process` (another process,
   * e.g. `kill -ABRT` or a supervisor), `kernel` (a fault or a kernel
   * decision). Absent when siginfo is not in the core.
   */
  sender: z
    .object({
      kind: z.enum(["self", "process", "kernel"]),
      pid: z.number().int().nullable(),
      uid: z.number().int().nullable(),
    })
    .optional(),
  /** A crash handler of the process re-raised a real fault (the crash frame is where it happened, below `<signal handler called>` when the handler is still on the stack). */
  reraised: z.boolean().optional(),
});
export type Signal = z.infer<typeof SignalSchema>;

export const SignatureSchema = z.object({
  text: z.string(),
  hash: z.string(),
  frames: z.array(z.string()),
});
export type Signature = z.infer<typeof SignatureSchema>;

export const SharedLibrarySchema = z.object({
  from: z.string().nullable(),
  to: z.string().nullable(),
  symbols_read: z.boolean(),
  path: z.string(),
});
export type SharedLibrary = z.infer<typeof SharedLibrarySchema>;

export const ModuleSchema = z.object({
  path: z.string(),
  build_id: z.string().nullable(),
  start: z.string().nullable(),
  end: z.string().nullable(),
  /** found | missing | mismatched | invalid (the core's path for it is not a usable name: `..`, control characters; never looked up) */
  status: z.enum(["found", "missing", "mismatched", "invalid"]),
  /** Where the file came from: exe, sysroot, image, host, symbol_store, debuginfod. */
  source: z.string().nullable(),
  file: z.string().nullable(),
  /** What gdb can name from what was found: dwarf (functions, files, lines), symtab, dynsym (exported names only) or none. */
  symbols: z.enum(["dwarf", "symtab", "dynsym", "none"]).optional(),
  /** A separate debug file used for this module, and where it came from. */
  debug_file: z.string().nullable().optional(),
  debug_source: z.string().nullable().optional(),
  /** Source `image`: the image reference and the digests of the layers that held the binary and the debug file. */
  image: z.object({ reference: z.string(), layer: z.string().nullable(), debug_layer: z.string().nullable() }).optional(),
});
export type Module = z.infer<typeof ModuleSchema>;

export const ErrorInfoSchema = z.object({
  code: ErrorCodeSchema,
  message: z.string(),
});

export const GdbInfoSchema = z.object({
  version: z.string().nullable(),
  exit_code: z.number().int().nullable(),
  duration_ms: z.number().nonnegative(),
  truncated: z.boolean(),
  stderr: z.string().optional(),
});

export const CoreInfoSchema = z.object({
  size: z.number().int().nonnegative().nullable(),
  executable: z.string().nullable(),
  command_line: z.string().nullable(),
  architecture: z.string().nullable().optional(),
  /** The dump was gzip/zstd compressed (size is the compressed size then). */
  compression: z.string().nullable().optional(),
  /** The core file is shorter than its program headers say: frames may be missing. */
  truncated: z.boolean().optional(),
});

export const ResultSchema = z.object({
  schema_version: z.literal(SCHEMA_VERSION),
  status: z.enum(["completed", "failed"]),
  error: ErrorInfoSchema.optional(),
  signal: SignalSchema.nullable(),
  crash_thread: z.number().int().nullable(),
  threads: z.array(ThreadSchema),
  /** Go only: every goroutine that is not dead, as the runtime lists them. */
  goroutines: z.array(GoroutineSchema).optional(),
  crash_frame: FrameSchema.nullable(),
  signature: SignatureSchema.nullable(),
  /** Symbol quality in [0, 1], weighted toward the crash thread's top frames. */
  quality: z.number().min(0).max(1),
  shared_libraries: z.array(SharedLibrarySchema),
  abort_message: z.string().nullable(),
  /** C++ uncaught exception type / what(), Rust panic message, when known. */
  runtime: z
    .object({
      exception_type: z.string().nullable(),
      exception_message: z.string().nullable(),
      panic_message: z.string().nullable(),
    })
    .partial()
    .optional(),
  modules: z.array(ModuleSchema).optional(),
  /** The crashed container's image (the event's data.image) as the `image` symbol source resolved it; digests null when it could not. */
  image: z.object({ reference: z.string(), digest: z.string().nullable(), manifest_digest: z.string().nullable(), platform: z.string().nullable() }).optional(),
  symbolication: z
    .object({
      found: z.number().int(),
      missing: z.number().int(),
      mismatched: z.number().int(),
      missing_build_ids: z.array(z.string()),
      /** Found modules without DWARF: upload their debug files (symbols add) for function names and lines. */
      without_debug_info_build_ids: z.array(z.string()).optional(),
    })
    .optional(),
  /** Things that limit how far this result can be trusted, in words (e.g. symbol resolution failed). */
  warnings: z.array(z.string()).optional(),
  gdb: GdbInfoSchema.nullable(),
  core: CoreInfoSchema.nullable(),
  /** The crash thread's registers at the crash (gdb `info registers`): name → value as gdb printed it. */
  registers: z.record(z.string(), z.string()).optional(),
  /** Instructions from the faulting pc (gdb `x/16i $pc`); the line starting `=>` is the faulting one. */
  disassembly: z.array(z.string()).optional(),
  analyzed_at: z.string().optional(),
  worker: z.object({ version: z.string(), host: z.string() }).optional(),
  /**
   * Crash storms (DEDUP=on): the analysis_id whose result this one copies
   * (signal, crash thread, crash frame, signature, quality); gdb did not run
   * for this dump, so `threads` is empty and `gdb` null.
   */
  deduplicated_from: z.string().optional(),
  /** The address signature's key (lib/dedup/addressSignature.ts), when one was computed. */
  address_signature: z.string().optional(),
});
export type Result = z.infer<typeof ResultSchema>;
