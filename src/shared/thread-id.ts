import { readlinkSync } from 'node:fs';

/** The calling thread's OS thread id on Linux (from /proc/thread-self), else 0. */
export function threadId(): number {
  try {
    return Number(/task\/(\d+)$/.exec(readlinkSync('/proc/thread-self'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}
