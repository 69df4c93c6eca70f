/**
 * The sleep of a background loop (the outbox publisher, the notifier) that
 * something can cut short: `pause(ms)` waits up to ms, `wake()` ends the
 * current pause, or the next one at once when none is running (a wake never
 * gets lost between two pauses).
 */
export interface Waker {
  pause(ms: number): Promise<void>;
  wake(): void;
}

export function createWaker(): Waker {
  let wakeUp: (() => void) | null = null;
  let woken = false;
  return {
    wake() {
      woken = true;
      wakeUp?.();
    },
    pause(ms) {
      return new Promise<void>((resolve) => {
        if (woken) {
          woken = false;
          return resolve();
        }
        const t = setTimeout(done, ms);
        function done() {
          clearTimeout(t);
          wakeUp = null;
          woken = false;
          resolve();
        }
        wakeUp = done;
      });
    },
  };
}
