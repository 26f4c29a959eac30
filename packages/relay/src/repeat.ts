// A step repeated on a timer: the relay's rescans of socket globs and of its web config.

/**
 * Runs `step` now, then `everyMs` after each run has ended (never two at once), until `close()`.
 * `step` is told whether it was stopped meanwhile, to check after each of its awaits. The timer
 * never keeps the process alive.
 */
export function repeat(everyMs: number, step: (stopped: () => boolean) => Promise<void>): { close(): void } {
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const run = async () => {
    await step(() => stopped);
    if (stopped) return;
    timer = setTimeout(run, everyMs);
    timer.unref();
  };
  void run();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
