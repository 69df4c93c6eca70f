/**
 * Symbol quality in [0, 1]: how much of the backtrace a human can read.
 *
 * A frame scores 1 with a function name and a source file, 0.5 with a
 * function name only, 0 for `??`. The crash thread's first 10 frames carry
 * 80% of the score, weighted 1/(i+1) so frame #0 matters most; the other
 * threads (their first 10 frames, uniformly) carry 20%. Without other
 * threads the crash thread is the whole score. `<signal handler called>`
 * pseudo-frames are not scored: they have no symbols to miss.
 */
import type { Frame, Thread } from "../result.js";

/** Frames scored per thread (other than `<signal handler called>`). */
export const TOP_FRAMES = 10;
const CRASH_WEIGHT = 0.8;

export function frameScore(f: Frame): number {
  if (f.function === null) return 0;
  return f.file ? 1 : 0.5;
}

function scored(frames: Frame[]): Frame[] {
  return frames.filter((f) => !f.signal_handler).slice(0, TOP_FRAMES);
}

/** What a thread other than the crash thread adds to the quality: its scored frames' sum and count. */
export function otherThreadScore(frames: Frame[]): { sum: number; count: number } {
  let sum = 0;
  let count = 0;
  for (const f of scored(frames)) {
    sum += frameScore(f);
    count++;
  }
  return { sum, count };
}

/**
 * Quality of a backtrace; 0 when there are no frames at all. `scoreOf`
 * gives otherThreadScore for threads whose frames are not all at hand (a
 * lean parse's digests, lib/gdb/summarize.ts).
 */
export function qualityOf(threads: Thread[], crashThread: number | null, scoreOf?: (t: Thread) => { sum: number; count: number }): number {
  if (threads.length === 0) return 0;
  const crash = threads.find((t) => t.number === crashThread) ?? threads[0]!;
  const top = scored(crash.frames);
  let crashScore: number | null = null;
  if (top.length > 0) {
    let sum = 0;
    let weights = 0;
    top.forEach((f, i) => {
      const w = 1 / (i + 1);
      sum += w * frameScore(f);
      weights += w;
    });
    crashScore = sum / weights;
  }
  let otherSum = 0;
  let otherCount = 0;
  for (const t of threads) {
    if (t === crash) continue;
    const part = scoreOf ? scoreOf(t) : otherThreadScore(t.frames);
    otherSum += part.sum;
    otherCount += part.count;
  }
  const otherScore = otherCount > 0 ? otherSum / otherCount : null;
  let q: number;
  if (crashScore === null && otherScore === null) q = 0;
  else if (crashScore === null) q = otherScore! * (1 - CRASH_WEIGHT);
  else if (otherScore === null) q = crashScore;
  else q = CRASH_WEIGHT * crashScore + (1 - CRASH_WEIGHT) * otherScore;
  return Math.round(Math.min(1, Math.max(0, q)) * 1000) / 1000;
}
