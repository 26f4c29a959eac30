// Timing helpers shared by the bench sections.
import { readdirSync, readFileSync } from 'node:fs';
import type { TcpRecorder } from '../src/index.js';
import { RingSlot } from '../src/shared/layout.js';

/** CPU time by thread, in ms: the main thread, the exporter's worker thread, and the others. */
export interface ThreadCpu {
  main: number;
  worker: number;
  other: number;
}

/** A thread's CPU time so far, in ns, from its schedstat file (Linux; ns resolution). */
export function schedstatNs(file: string): number {
  return Number(readFileSync(file, 'utf8').split(' ')[0]);
}

const nap = new Int32Array(new SharedArrayBuffer(4));
/**
 * The calling thread's CPU time in ns (Linux), or undefined. A 50 µs nap first: the kernel
 * brings a running thread's figure up to date when it stops running, not at each read.
 */
export function ownCpuNs(): number | undefined {
  if (process.platform !== 'linux') return undefined;
  Atomics.wait(nap, 0, 0, 0.05);
  return schedstatNs('/proc/thread-self/schedstat');
}

/** CPU time of every thread of this process so far, in ns, by thread id (Linux: schedstat, ns resolution). */
function threadCpuNs(): Map<string, number> {
  const out = new Map<string, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      out.set(tid, schedstatNs(`/proc/self/task/${tid}/schedstat`));
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/**
 * CPU time so far of this process's main thread, of the thread `workerTid` (0: none) and of
 * the others, in ms. Without /proc (not Linux), the whole process's time counts as `main`.
 */
export function cpuByThread(workerTid: number): ThreadCpu {
  const out: ThreadCpu = { main: 0, worker: 0, other: 0 };
  if (process.platform !== 'linux') {
    const u = process.cpuUsage();
    out.main = (u.user + u.system) / 1000;
    return out;
  }
  for (const [tid, ns] of threadCpuNs()) {
    if (tid === String(process.pid)) out.main += ns / 1e6;
    else if (tid === String(workerTid)) out.worker += ns / 1e6;
    else out.other += ns / 1e6;
  }
  return out;
}

/** Minimum and median of a list of numbers. */
export function summary(xs: number[]): { min: number; median: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return { min: s[0]!, median: s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2 };
}

/** The p-th percentile (0..100) of already sorted numbers. */
export function percentile(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
export const tick = () => new Promise<void>((r) => setImmediate(r));

/** A table as aligned text (first row is the header). */
export function table(rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map(String));
  const widths = cells[0]!.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(cells[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}

/** A number with a fixed number of significant-looking decimals. */
export function fmt(n: number, digits = 1): string {
  if (!Number.isFinite(n)) return '-';
  if (Math.abs(n) >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (Math.abs(n) >= 1e4) return `${(n / 1e3).toFixed(0)}k`;
  return n.toFixed(digits);
}

/** A timed loop: `n` calls of one candidate's body, with the target as `t`. */
export type Loop = (t: unknown, n: number) => void;

/**
 * Each candidate gets its own loop function, so no call site is shared between candidates. The
 * source names the candidate: V8 caches `new Function` by its source text, type feedback
 * included, so two candidates with the same body would share one call site, made polymorphic
 * by both targets (measured: 3 ns a call instead of 0.9 for five such loops).
 */
export function loopFor(body: string, tag: string): Loop {
  return new Function('t', 'n', `// ${tag}\nfor (let i = 0; i < n; i++) { ${body}; }`) as Loop;
}

/** Wall time of one run of `loop`, in ns a call. */
export function timeRun(loop: Loop, target: unknown, n: number): number {
  const t0 = process.hrtime.bigint();
  loop(target, n);
  return Number(process.hrtime.bigint() - t0) / n;
}

/**
 * Until the worker has taken everything the recorder's own ring held (its head reached its tail;
 * `stats().recorded` cannot say: it counts what the rings hold too), at most 2 s. The worker
 * counts a ring's drops in the round that takes its records, so they are counted then too. The
 * main thread publishes its last records once per turn, hence the immediate first.
 */
export async function settled(r: TcpRecorder): Promise<void> {
  const header = (r as unknown as { ringHeader: Int32Array }).ringHeader;
  await new Promise((res) => setImmediate(res));
  const until = Date.now() + 2000;
  while (Atomics.load(header, RingSlot.Head) !== Atomics.load(header, RingSlot.Tail) && Date.now() < until) await new Promise((res) => setTimeout(res, 1));
}
