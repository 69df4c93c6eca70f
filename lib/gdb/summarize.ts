/**
 * The analysis of a parsed backtrace: signal, crash thread, crash frame,
 * signature and quality. The one function both `parse` (text in hand) and
 * `analyze` (gdb run on a dump) call, so they can never disagree.
 */
import type { Frame, Signal, Signature, Thread } from "../result.js";
import { crashFrameOf, findCrashThread, showsSignal } from "./crash.js";
import type { Backtrace } from "./parseBacktrace.js";
import { otherThreadScore, qualityOf } from "./quality.js";
import { parseSiginfo, signalOf } from "./signal.js";
import type { GroupingRules } from "./groupingRules.js";
import { inAppOf, signatureOf, type SignatureOptions } from "./signature.js";

export interface Summary {
  signal: Signal | null;
  crash_thread: number | null;
  /** The backtrace's threads with `crashed` set on the crash thread. */
  threads: Thread[];
  crash_frame: Frame | null;
  signature: Signature | null;
  quality: number;
  executable: string | null;
  command_line: string | null;
}

/**
 * What the summary reads of a thread's frames when it is not the crash
 * thread: a lean parse (`parse`'s default outputs) keeps this instead of the
 * frames it does not show.
 */
export interface ThreadDigest {
  showsSignal: boolean;
  score: { sum: number; count: number };
}

/** The digest of a thread's frames (all of them, or at least its first 12). */
export function digestThread(frames: Frame[]): ThreadDigest {
  return { showsSignal: showsSignal(frames), score: otherThreadScore(frames) };
}

/**
 * @param extras.siginfoText what gdb printed for `print $_siginfo` (most precise signal source)
 * @param extras.lwpHint LWP of the signalled thread when known from elsewhere
 * @param extras.selectedThread gdb's selected thread from the command file's own section (wins over the text)
 * @param extras.processPid the crashed process's pid (core notes): tells who sent the signal
 */
export function summarize(
  bt: Backtrace,
  extras: {
    siginfoText?: string | null;
    lwpHint?: number | null;
    selectedThread?: number | null;
    processPid?: number | null;
    /** The module holding an address (the core's module map): unsymbolized frames enter the signature as module+offset. */
    moduleAt?: SignatureOptions["moduleAt"];
    /** The crashed program's path (the core's executable module): its frames are in-app wherever it is installed. */
    executable?: string | null;
    /** The operator's grouping rules: in-app and the signature follow them. */
    rules?: GroupingRules;
    /** Threads (by number) whose frames are only their first ones: what all their frames give. The crash thread's frames must be whole. */
    digests?: Map<number, ThreadDigest>;
  } = {},
): Summary {
  const siginfo = parseSiginfo(extras.siginfoText ?? null);
  const digests = extras.digests;
  const crashThread = findCrashThread(bt, {
    lwp: extras.lwpHint ?? null,
    selected: extras.selectedThread ?? null,
    ...(digests ? { showsSignal: (t: Thread) => digests.get(t.number)?.showsSignal ?? showsSignal(t.frames) } : {}),
  });
  const grouping: SignatureOptions = {
    ...(extras.moduleAt ? { moduleAt: extras.moduleAt } : {}),
    executable: extras.executable ?? null,
    ...(extras.rules ? { rules: extras.rules } : {}),
  };
  const threads = bt.threads.map((t) => ({
    ...t,
    crashed: t.number === crashThread,
    frames: t.frames.map((f) => ({ ...f, in_app: inAppOf(f, grouping).inApp })),
  }));
  const crash = threads.find((t) => t.crashed) ?? null;
  const signal = signalOf({ siginfo, terminatedBy: bt.terminatedBy, processPid: extras.processPid ?? null, crashFrames: crash?.frames ?? null });
  const sentByAnotherProcess = signal?.sender?.kind === "process";
  return {
    signal,
    crash_thread: crashThread,
    threads,
    crash_frame: crash ? crashFrameOf(crash, { sentByAnotherProcess }) : null,
    signature: crash ? signatureOf(crash, { ...grouping, sentByAnotherProcess }) : null,
    quality: qualityOf(threads, crashThread, digests ? (t) => digests.get(t.number)?.score ?? otherThreadScore(t.frames) : undefined),
    executable: bt.executable,
    command_line: bt.commandLine,
  };
}
