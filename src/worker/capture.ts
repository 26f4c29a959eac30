import { receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { Ask, Ctl } from '../shared/layout.js';
import type { CaptureAnswer, CaptureAsk, CapturedMetric } from '../shared/messages.js';
import type { CaptureAsks } from './pipeline.js';
import type { HistogramTable } from './scrape/histograms.js';
import type { NameInfo } from './scrape/exposition.js';
import type { ReplayTable } from './replay.js';

/**
 * How long an ask waits for what is on its way (a thread's ring announcement or control
 * message, which come on this worker's event loop) before it is answered with what is here.
 */
const TAKE_GRACE_MS = 2000;
/**
 * How long an ask waits for records a thread has written and not published yet. A thread
 * publishes at the end of each job, in a microtask: after a message it posted in that job saying
 * it is done. It does so within microseconds, unless it is descheduled, or runs on in a long
 * synchronous loop (which must call `flush()`): a read waits that long for it, at most.
 */
const PUBLISH_GRACE_MS = 100;
const WORD = 2 ** 32;

/** What the capture's worker reads its answers from. */
export interface CaptureSources {
  readonly ctl: Int32Array;
  /** Where answers go (the app's thread reads them synchronously, with `receiveMessageOnPort`). */
  readonly port: MessagePort;
  readonly replay: ReplayTable;
  readonly histograms: HistogramTable;
  readonly info: (name: string) => NameInfo | undefined;
  /** Records dropped because a ring was full, so far. */
  readonly ringFull: () => number;
  /** See `Pipeline.takeAll`. */
  readonly takeAll: (deadline: number, unpublished: boolean) => boolean;
  /** See `Pipeline.stopWaitingForAttaches`. */
  readonly stopWaiting: () => void;
  /** See `Pipeline.resetTotals`. */
  readonly reset: () => void;
}

/**
 * The worker's side of `captureMetrics()`: the app's thread asks (`Ctl.Ask`, then the doorbell)
 * and blocks in `Atomics.wait` until this answers. An ask is served from the pipeline's rounds:
 * it takes every record and state published so far (waiting, through turns of the event loop, for
 * announcements still on their way), then answers with the totals, or resets them.
 */
export class CaptureServer implements CaptureAsks {
  private answered: number;
  private serving = false;

  constructor(private readonly s: CaptureSources) {
    // A restarted worker answers what its predecessor did not.
    this.answered = Atomics.load(s.ctl, Ctl.Answered);
  }

  pending(): boolean {
    return !this.serving && Atomics.load(this.s.ctl, Ctl.Ask) !== this.answered;
  }

  serve(): void {
    this.serving = true;
    const seq = Atomics.load(this.s.ctl, Ctl.Ask);
    const op = Atomics.load(this.s.ctl, Ctl.AskOp) as Ask;
    const deadline = Date.now() + TAKE_GRACE_MS;
    const published = Date.now() + PUBLISH_GRACE_MS;
    const attempt = (): void => {
      if (!this.s.takeAll(deadline, Date.now() < published)) {
        if (Date.now() < deadline) {
          setImmediate(attempt);
          return;
        }
        this.s.stopWaiting(); // answered with what is here; the next read does not wait again
      }
      const key = this.keyAsked(seq);
      if (op === Ask.Reset) this.s.reset();
      const answer: CaptureAnswer = { seq, series: op === Ask.Reset ? [] : this.series(key), ringFull: this.s.ringFull() };
      this.s.port.postMessage(answer);
      this.answered = seq;
      this.serving = false;
      Atomics.store(this.s.ctl, Ctl.Answered, seq);
      Atomics.notify(this.s.ctl, Ctl.Answered);
    };
    attempt();
  }

  /** The key ask `seq` wants (its canonical form): every series if undefined, none if null. */
  private keyAsked(seq: number): string | null | undefined {
    let key: string | null | undefined;
    for (let m = receiveMessageOnPort(this.s.port); m !== undefined; m = receiveMessageOnPort(this.s.port)) {
      const ask = m.message as CaptureAsk;
      if (ask?.seq === seq) key = ask.key;
    }
    return key;
  }

  /** Every series (of `key` only, if given) with something recorded since the start or the last reset. */
  private series(key: string | null | undefined): CapturedMetric[] {
    const out: CapturedMetric[] = [];
    if (key === null) return out;
    const described = (name: string): { unit?: string; description?: string } => {
      const info = this.s.info(name);
      return { ...(info?.unit === undefined ? {} : { unit: info.unit }), ...(info?.description === undefined ? {} : { description: info.description }) };
    };
    for (const v of this.s.replay.values()) {
      if (key !== undefined && v.canonical !== key) continue;
      const { name, labels } = v;
      if (v.kind === 'gauge') out.push({ name, labels, kind: 'gauge', value: v.lo, ...described(name) });
      else out.push({ name, labels, kind: 'counter', value: counterValue(v.lo, v.hi), ...described(name) });
    }
    for (const h of this.s.histograms.values()) {
      if ((key !== undefined && h.canonical !== key) || h.aggregate.count === 0) continue;
      out.push({ name: h.name, labels: h.labels, kind: 'histogram', count: h.aggregate.count, sum: h.aggregate.sum, ...described(h.name) });
    }
    return out;
  }
}

/** A counter's total `hi * 2^32 + lo`: a number while it is a safe integer, a bigint beyond. */
function counterValue(lo: number, hi: number): number | bigint {
  const n = hi * WORD + lo;
  return Number.isSafeInteger(n) ? n : (BigInt(hi) << 32n) | BigInt(lo);
}
