import { receiveMessageOnPort } from 'node:worker_threads';
import { CaptureError } from '../errors.js';
import { TcpBuilder } from '../app/builder.js';
import { describeRemembered } from '../app/global.js';
import { normalizeKey, type Key } from '../app/key.js';
import { capturing, getGlobal, hostOf, setGlobal, type TcpRecorder } from '../app/recorder.js';
import type { Recording } from '../app/recording.js';
import { Ask, Ctl } from '../shared/layout.js';
import type { CaptureAnswer, CaptureAsk, CapturedMetric, MetricKind } from '../shared/messages.js';

/**
 * How long a read waits for the capture's worker. It answers within milliseconds; it waits up to
 * 2 s itself for a thread's announcement still on its way. Past this the worker is gone or stuck.
 */
const ANSWER_TIMEOUT_MS = 10_000;

/** A histogram's observations, as a capture reads them. */
export interface HistogramTotals {
  /** Observations recorded. */
  readonly count: number;
  /** Their sum. */
  readonly sum: number;
}

/**
 * What `value()` reads: a counter's total (a `number` up to 2^53 − 1, a `bigint` beyond it, exact
 * to 2^64), a gauge's value, or a histogram's `{ count, sum }`.
 */
export type CapturedValue = number | bigint | HistogramTotals;

/**
 * The capture's recorder: the recording API (register calls, key-based calls, handles), and
 * `connector()` for other threads (`attach()`, or `withMetrics()` for piscina) to record into it.
 */
export type CaptureRecorder = Recording & Pick<TcpRecorder, 'connector'>;

/** Where `snapshot()` puts a kind among the series of one key. */
const KIND_ORDER: Readonly<Record<MetricKind, number>> = { counter: 0, gauge: 1, histogram: 2 };

/**
 * Metrics captured in memory, for tests: what `captureMetrics()` returns. Every read (`value()`,
 * `snapshot()`) is current: it first has the capture's worker take everything recorded so far,
 * synchronously (see {@link flush}).
 */
export class MetricsCapture {
  private closing: Promise<void> | undefined;
  /** `ringFull` when the capture started or was last reset: more since means the totals are short. */
  private lostBefore = 0;

  /** @internal */
  constructor(private readonly rec: TcpRecorder) {}

  /** The capture's recorder, for code that takes a recorder, and for other threads (`connector()`). */
  get recorder(): CaptureRecorder {
    return this.rec;
  }

  /**
   * The current value of `key`'s series: a counter's total since the capture started (or was
   * reset), a gauge's value, a histogram's `{ count, sum }`; `undefined` if nothing was recorded
   * under it since. Labels must match exactly (their order does not matter).
   * @param kind which series, when a key was recorded as more than one kind
   * @throws CaptureError code `RECORDS_LOST` (records were dropped: the value would be short),
   *   `AMBIGUOUS_KEY`, `CLOSED` or `TIMEOUT`; TypeError for an invalid key
   */
  value(key: Key, kind: 'counter'): number | bigint | undefined;
  value(key: Key, kind: 'gauge'): number | undefined;
  value(key: Key, kind: 'histogram'): HistogramTotals | undefined;
  value(key: Key, kind?: MetricKind): CapturedValue | undefined;
  value(key: Key, kind?: MetricKind): CapturedValue | undefined {
    const canonical = normalizeKey(key).canonical;
    const found = this.ask(Ask.Read, canonical).filter((s) => kind === undefined || s.kind === kind);
    if (found.length > 1) {
      throw new CaptureError('AMBIGUOUS_KEY', `${canonical} was recorded as ${found.map((s) => s.kind).join(' and ')}: say which with value(key, kind)`);
    }
    const s = found[0];
    if (s === undefined) return undefined;
    return s.kind === 'histogram' ? { count: s.count, sum: s.sum } : s.value;
  }

  /**
   * Every series recorded since the capture started (or was reset), sorted by name, then labels,
   * then kind: `{ name, labels, kind, value }` for counters and gauges, `{ name, labels, kind,
   * count, sum }` for histograms, with `unit` and `description` when they were registered.
   * @throws CaptureError code `RECORDS_LOST`, `CLOSED` or `TIMEOUT`
   */
  snapshot(): CapturedMetric[] {
    const keyed = this.ask(Ask.Read, undefined).map((s) => ({ s, canonical: normalizeKey(s).canonical }));
    keyed.sort((a, b) => cmp(a.s.name, b.s.name) || cmp(a.canonical, b.canonical) || KIND_ORDER[a.s.kind] - KIND_ORDER[b.s.kind]);
    return keyed.map(({ s }) => s);
  }

  /**
   * Forgets everything recorded so far: every series reads `undefined` and is left out of
   * `snapshot()` until it is recorded again, and counters count from 0. Handles stay valid, and
   * units and descriptions stay registered. What another thread has recorded but not published yet
   * (see the README) counts after the reset.
   * @throws CaptureError code `CLOSED` or `TIMEOUT`
   */
  reset(): void {
    this.ask(Ask.Reset, null);
  }

  /**
   * Has the capture's worker take, synchronously, everything recorded so far: this thread's
   * records, and what other threads have published (their records at the end of each job or
   * turn of their event loop, and every 64 records). `value()` and `snapshot()` do this
   * themselves; on its own it tells whether records were lost.
   * @throws CaptureError code `RECORDS_LOST`, `CLOSED` or `TIMEOUT`
   */
  flush(): void {
    this.ask(Ask.Read, null);
  }

  /**
   * Uninstalls the capture (the next `captureMetrics()` works once this resolves) and stops its
   * worker. Handles from the global functions do nothing until a recorder is installed again.
   * Safe to call twice.
   */
  close(): Promise<void> {
    this.closing ??= this.rec.close();
    return this.closing;
  }

  /** `close()`, for `await using cap = await captureMetrics()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Asks the worker (see `Ctl.Ask`) and waits for its answer, blocking this thread: the worker
   * needs nothing from it meanwhile (this thread's records are published first; its control
   * messages the worker takes from its port synchronously).
   */
  private ask(op: Ask, key: string | null | undefined): CapturedMetric[] {
    if (this.closing !== undefined) throw new CaptureError('CLOSED', 'this capture is closed: call captureMetrics() again for a new one');
    const host = hostOf(this.rec);
    const answers = host.answers!;
    const ctl = new Int32Array(this.rec.connector().ctl);
    this.rec.flush();
    const seq = (Atomics.load(ctl, Ctl.Ask) + 1) | 0;
    answers.postMessage({ seq, key } satisfies CaptureAsk);
    Atomics.store(ctl, Ctl.AskOp, op);
    Atomics.store(ctl, Ctl.Ask, seq);
    Atomics.add(ctl, Ctl.Doorbell, 1);
    Atomics.notify(ctl, Ctl.Doorbell);
    const end = Date.now() + ANSWER_TIMEOUT_MS;
    for (let seen = Atomics.load(ctl, Ctl.Answered); seen !== seq; seen = Atomics.load(ctl, Ctl.Answered)) {
      const left = end - Date.now();
      if (left <= 0 || !host.serving) throw new CaptureError('TIMEOUT', `the capture's worker did not answer within ${ANSWER_TIMEOUT_MS} ms`);
      Atomics.wait(ctl, Ctl.Answered, seen, left);
    }
    let answer: CaptureAnswer | undefined;
    for (let m = receiveMessageOnPort(answers); m !== undefined; m = receiveMessageOnPort(answers)) answer = m.message as CaptureAnswer;
    if (answer?.seq !== seq) throw new CaptureError('TIMEOUT', "the capture's worker answered, but its answer did not arrive");
    if (op === Ask.Reset) this.lostBefore = answer.ringFull;
    else if (answer.ringFull > this.lostBefore) {
      throw new CaptureError(
        'RECORDS_LOST',
        `${answer.ringFull - this.lostBefore} records were dropped since the capture started or was reset (a ring was full: more gauge changes, histogram observations or bigint increments in one synchronous burst than a ring holds, ${this.rec.connector().bufferSize}), so the totals would be short; keep captureMetrics()'s default bufferSize (the most) or record less in one burst, then reset()`,
      );
    }
    return answer.series;
  }
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Options of {@link captureMetrics}. */
export interface CaptureOptions {
  /**
   * Records each thread's ring holds (as `TcpBuilder.bufferSize`): how many gauge changes,
   * histogram observations and bigint counter increments a thread may make in one synchronous
   * burst before reads report `RECORDS_LOST` (counter increments given as numbers never go
   * through it: they add up in the thread's state). Default 1 048 576, the most (16 MiB of
   * memory, committed only as it is used).
   */
  bufferSize?: number;
}

/**
 * Installs a global recorder that keeps every metric's total in memory, for tests: handles and
 * calls of the code under test record through the usual hot path (and from other threads through
 * `cap.recorder.connector()`), and `value()`/`snapshot()` read the totals. No socket is opened.
 * Handles from the global functions (`counter()`, `gauge()`, `histogram()`) record into it
 * wherever they were made, also at module level before this was called.
 * @throws CaptureError code `RECORDER_ALREADY_SET` if a global recorder is installed (an earlier
 *   capture not closed, or `TcpBuilder.install()`); TypeError for a bad `bufferSize`
 */
export async function captureMetrics(options: CaptureOptions = {}): Promise<MetricsCapture> {
  const builder = new TcpBuilder().forCapture();
  if (options.bufferSize !== undefined) builder.bufferSize(options.bufferSize);
  if (getGlobal() !== undefined) throw alreadySet();
  const recorder = await builder.build();
  if (!setGlobal(recorder, true)) {
    await recorder.close();
    throw alreadySet();
  }
  describeRemembered(recorder);
  return new MetricsCapture(recorder);
}

function alreadySet(): CaptureError {
  return new CaptureError(
    'RECORDER_ALREADY_SET',
    capturing()
      ? 'captureMetrics(): the capture of an earlier captureMetrics() is still installed: await cap.close() first (e.g. in afterEach)'
      : 'captureMetrics(): a global recorder is already installed (TcpBuilder.install()): a capture replaces none',
  );
}
