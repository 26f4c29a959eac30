import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  Ctl,
  KEY_ID_LIMIT,
  LITTLE_ENDIAN,
  Op,
  Park,
  RingSlot,
  STATE_PAGE_KEYS,
  createRing,
  recordHeader,
  ringViews,
} from '../shared/layout.js';
import type { ChannelMessage, ControlMessage, Protocol, RingRecord } from '../shared/messages.js';
import type { WallClock } from './clock.js';
import type { Chunk } from './chunk.js';
import { FrameEncoder, GaugeOp } from './encoder.js';
import { FillLevels } from './fill-levels.js';
import { FrameKernel, KernelStop } from './frame-kernel.js';
import { Entry, Journal } from './journal.js';
import type { KeyEntry, KeyTable } from './keys.js';
import { encodeMetadata, type MetadataStore } from './metadata.js';
import type { ReplayTable } from './replay.js';
import type { HistogramTable } from './scrape/histograms.js';
import { RingReader } from './ring-reader.js';
import type { Counters } from './stats.js';
import { Loss } from './transport/loss-report.js';
import type { Transport } from './transport/server.js';
import { Waiter } from './waiter.js';

/**
 * Records taken from one ring per round before the worker yields to socket I/O. A round also
 * ends when its batch of frames is full (`FrameEncoder.full`, half an encoding slab): 16384
 * records of short frames, or 4096 of long ones, overflowed the slab and moved each batch into
 * a new, larger one, which measured 2–3× (short frames) and 3–6× (350-byte frames) slower per record.
 */
const ROUND_BUDGET = 4096;
/**
 * Control messages (key announcements, metadata) applied per ring per round. A burst of
 * registrations in one thread then delays the records of other rings by a round, not by all of
 * them.
 */
const CONTROL_BUDGET = 512;
/**
 * An idle worker looks at the rings at least this often. Producers ring an idle worker's
 * doorbell after publishing, and it takes a last look at the rings after saying it is idle, so
 * a wake-up cannot be missed; this only bounds the cost of a bug.
 */
const IDLE_CHECK_MS = 10_000;
/** How often rings of other threads are checked for a thread that died without saying so. */
const LIVENESS_MS = 500;
/**
 * How long the worker keeps waking once per flush interval with nothing to do before it sleeps
 * until a producer rings. A ring costs the app's thread a system call: an app that records
 * every few hundred milliseconds would pay one per batch; the worker's empty rounds in between
 * cost it about as much as a timer that does nothing.
 */
const IDLE_AFTER_MS = 1000;
/**
 * How long, after its thread died, a ring waits for control messages that thread sent; a
 * terminated thread's last messages may never arrive.
 */
const CONTROL_GRACE_MS = 2000;
/**
 * `replayOnConnect`: how long after a client connects the rings' state pages are still folded
 * every round. A thread that read "no client" just before the worker said there is one writes
 * its record to its state page a moment later; folding it then sends it to the clients (it is
 * in no ring). A thread stalled longer than this between the two has its record folded when the
 * next client connects or when it ends (in the totals, but not sent to the clients meanwhile).
 */
const FOLD_AFTER_CONNECT_MS = 1000;
/**
 * The kernel is worth it while at most one record in this many goes back to the encoder. Each
 * one that does costs about 500 ns more than encoding it in JavaScript (an exit from
 * WebAssembly, the encoder's frame, a prefix learned), where the kernel saves 25–45 ns on each
 * record it takes. With 4096 distinct keys in a batch (each record the first or second of its
 * key), the kernel on every round measured 540 ns a record against 275 in JavaScript; switched
 * off by this ratio, 279 (and with 1–100 keys, 27–37 against 41–47).
 */
const KERNEL_MISS_RATIO = 16;
/** Rounds encoded in JavaScript after a round in which the kernel missed too often, before it is tried again. */
const KERNEL_REST_ROUNDS = 16;
/**
 * At a shutdown, how long after telling other threads that no client is connected the worker
 * first looks for records written but not published: a thread that read the old word an instant
 * before writes its record within nanoseconds, unless it is descheduled, for a time slice or two.
 * (One descheduled longer writes after the worker is gone: `stats()` still counts it.)
 */
const SETTLE_GRACE_MS = 20;
/** The journal's id of the warm-up's scratch ring (never committed). */
const WARM_UP_RING = -2;
/** Where, in a little-endian or big-endian u64 value slot, the low 32 bits are. */
const LOW_WORD = LITTLE_ENDIAN ? 0 : 1;

export interface PipelineParts {
  readonly protocol: Protocol;
  readonly ctl: Int32Array;
  /** The recorder's own ring (it lives as long as the exporter). */
  readonly main: RingReader;
  readonly keys: KeyTable;
  readonly metadata: MetadataStore;
  readonly transport: Transport;
  readonly counters: Counters;
  readonly clock: WallClock;
  /** How long a batch may gather (the `flushIntervalMs` option). */
  readonly flushIntervalMs: number;
  /** Every counter's total and gauge's value (for `replayOnConnect`, and the Prometheus endpoint). */
  readonly replay: ReplayTable | undefined;
  /** Whether a TCP client that connects is sent the totals first (`replayOnConnect`). */
  readonly replayOnConnect: boolean;
  /** Reports a problem to the app as a process warning. */
  readonly warn: (message: string, code: string) => void;
  /** Keeps each ring's commit all or nothing across a crash (see {@link Journal}). */
  readonly journal: SharedArrayBuffer;
  /** A ring whose thread is gone has been drained and committed: the host may forget it. */
  readonly released: (ring: number) => void;
  /** The app's process is exiting: deliver what was recorded now (see `Ctl.Exit`). */
  readonly exiting: () => void;
  /**
   * With the Prometheus endpoint: every histogram's observations (its records come through the
   * rings whether or not a TCP client is connected).
   */
  readonly histograms?: HistogramTable;
  /** A capture's asks (`captureMetrics()`), served before each round; absent for an exporter. */
  readonly capture?: CaptureAsks;
  /**
   * When the {@link FrameKernel} encodes: `auto` (the default) while it pays off (see
   * `KERNEL_MISS_RATIO`); `always` and `never` are for tests comparing the two paths.
   */
  readonly kernel?: 'auto' | 'always' | 'never';
}

/** The asks of a capture's app thread (see `Ctl.Ask`), as the pipeline sees them. */
export interface CaptureAsks {
  /** An ask is waiting and not being served yet. */
  pending(): boolean;
  /** Starts serving it (it may take a few turns of the event loop). */
  serve(): void;
}

/**
 * The worker's main loop: drain every ring in rounds, encode each round into one chunk shared
 * by all clients, and wait in between (see {@link Park}): a flush interval after a round that
 * found records, until a producer rings after one that found none. While a ring stays half
 * full it drains round after round, yielding to the event loop between them so that sockets
 * are served.
 */
export class Pipeline {
  private readonly encoder: FrameEncoder;
  /** Encodes most records while clients are connected; undefined with `replayOnConnect`, or where it cannot run. */
  private readonly kernel: FrameKernel | undefined;
  /** This round encodes with the kernel. */
  private kernelOn = false;
  /** Rounds left to encode in JavaScript before the kernel is tried again. */
  private kernelRest = 0;
  /** Records the kernel was given this round, and those of them it sent back to the encoder. */
  private kernelRecords = 0;
  private kernelMisses = 0;
  private readonly waiter: Waiter;
  private stopping = false;
  /** The last round left work behind (a budget ran out). */
  private busy = false;
  /** Runs a round, then decides how to wait for the next. */
  private readonly step = (): void => {
    if (this.stopping) return;
    if (this.exitAsked()) return this.p.exiting();
    if (this.p.capture?.pending()) this.p.capture.serve();
    this.p.counters.hold(); // what the round changes is published once
    const did = this.round();
    this.p.counters.release();
    if (this.busy || this.backlogged()) this.waiter.soon(); // more is waiting already
    // Let the next batch gather; also while state pages are folded after a connection (records
    // written late to them ring no doorbell).
    else if (did > 0 || this.foldUntil > 0) this.waiter.flush(this.flushWait());
    else if (performance.now() - this.lastWorkAt < IDLE_AFTER_MS) this.waiter.flush();
    else this.waiter.idle(this.attached.size > 0 ? LIVENESS_MS : IDLE_CHECK_MS);
  };
  /** Every ring being drained: the recorder's own first, then those of other threads. */
  private readonly rings: RingReader[];
  private readonly attached = new Map<number, RingReader>();
  /** Rings of other threads this worker has heard of (see `Ctl.Attaches`). */
  private ringsAttached = 0;
  private lastLiveness = 0;
  /** Control messages the ring being drained may still apply this round. */
  private controlBudget = CONTROL_BUDGET;
  /** Control messages applied this round. */
  private controlsApplied = 0;
  /** `replayOnConnect`: state pages are folded every round until then (`performance.now()`). */
  private foldUntil = 0;
  /** This round folds state pages (`foldUntil` had not passed when it began, or a scrape asked). */
  private folding = false;
  /** The next round folds state pages (a scrape asked). */
  private foldNext = false;
  /** This round encodes for clients. */
  private live = false;
  /** When the last round that found records ended (`performance.now()`). */
  private lastWorkAt = 0;
  /** When the last flush wait began (`performance.now()`). */
  private waitedAt = 0;

  private readonly journal: Journal;
  /** Self metrics: the rings' peak fills, reported to clients while records move. */
  private readonly levels: FillLevels | undefined;

  constructor(private readonly p: PipelineParts) {
    this.journal = new Journal(p.journal, {
      head: (ring, head, fullTaken) => this.ringById(ring)?.persist(head, fullTaken),
      slot: (slot, lo, hi, gauge, kinds) => p.replay?.persist(slot, lo, hi, gauge, kinds),
      fold: (ring, id, counter, sets, delta) => this.ringById(ring)?.persistFold(id, counter, sets, delta),
    });
    this.encoder = new FrameEncoder(p.protocol);
    // `replayOnConnect` adds every record to the totals in JavaScript: no kernel then.
    this.kernel = p.kernel === 'never' || p.replay !== undefined ? undefined : FrameKernel.create(p.protocol, ROUND_BUDGET);
    this.rings = [p.main];
    this.levels = p.transport.reportsFill ? new FillLevels(() => this.rings, p.transport) : undefined;
    this.waiter = new Waiter(
      p.ctl,
      p.flushIntervalMs,
      p.counters,
      (how) => this.stopping || this.urgent() || (how === Park.Idle ? this.hasWork() : this.backlogged()),
      this.step,
      () => this.urgent(),
    );
  }

  /** Something must be done at once: the process is exiting, or a capture asks. */
  private urgent(): boolean {
    return this.exitAsked() || this.p.capture?.pending() === true;
  }

  /** The app's main thread asked for a flush because its process is exiting. */
  private exitAsked(): boolean {
    return Atomics.load(this.p.ctl, Ctl.Exit) === 1;
  }

  /** A ring by its id in the journal: -1 for the recorder's own. */
  private ringById(id: number): RingReader | undefined {
    return id === this.p.main.key ? this.p.main : this.attached.get(id);
  }

  /**
   * Takes the rings of other threads the host knows (at a start: after a crash, every ring still
   * alive or not yet drained) with the control messages sent on each so far.
   */
  adopt(records: readonly RingRecord[]): void {
    for (const r of records) {
      if (this.attached.has(r.ring)) continue;
      const reader = this.attach(r.ring, new RingReader(r.desc, undefined, r.count, r.ring));
      this.apply(reader, r.messages);
    }
  }

  private attach(id: number, reader: RingReader): RingReader {
    this.ringsAttached++;
    this.attached.set(id, reader);
    this.rings.push(reader);
    this.p.counters.attachedThreads = this.attached.size;
    this.p.counters.changed();
    return reader;
  }

  /**
   * At a start, before clients are served: finishes a commit a crashed worker left half done,
   * counts from the figures it committed, and drains what the rings hold (records made for
   * clients of the crashed worker, or of a round it did not commit): nobody is sent them, and
   * `replayOnConnect` adds them to the totals.
   */
  recover(deadline: number): void {
    this.journal.recover();
    const f = this.journal.committed();
    const c = this.p.counters;
    c.recorded = f.recorded;
    c.ringFull = f.ringFull;
    c.invalid = f.invalid;
    this.drainUntil(deadline);
  }

  /**
   * Runs rounds while they find something to do, until `deadline` (ms since the epoch): a thread
   * that registers metadata without end keeps them busy, and must not hold a start or a shutdown.
   */
  private drainUntil(deadline: number): void {
    while (this.round() > 0 && Date.now() < deadline);
  }

  /** A message from the exporter's BroadcastChannel: a ring announced, or a ring's control message. */
  onChannel(m: ChannelMessage): void {
    if (m?.t === 'attach') {
      if (this.attached.has(m.ring)) return;
      this.attach(m.ring, new RingReader(m.desc, undefined, 0, m.ring));
    } else if ((m?.t === 'key' || m?.t === 'meta') && m.ring !== undefined) {
      this.attached.get(m.ring)?.deliver(m);
    } else {
      return; // not ours
    }
    // An idle worker is woken; one waiting out a flush interval takes it when that ends.
    this.waiter.poke();
  }

  start(): void {
    this.step();
  }

  /**
   * Runs the drain and encode path over a scratch ring until the JIT has optimised it. A cold
   * worker stalled for tens of milliseconds on its first busy rounds (compiling), long enough
   * to overflow a ring at 1M records/s; warmed, it does not. Rounds alternate between the
   * JavaScript encoder and the kernel (which V8 also compiles in tiers), over a key per op so
   * that the kernel takes all but each key's first record. Nothing is sent or counted, and the
   * kernel's switch-off is left as it was: the first real round uses the kernel.
   */
  warmUp(rounds = 60): void {
    const desc = createRing(1024);
    const ring = new RingReader(desc, undefined, 0, WARM_UP_RING);
    const ops = [Op.Counter, Op.CounterU64, Op.GaugeSet, Op.GaugeIncrement, Op.GaugeDecrement, Op.Histogram];
    // Local id j names the key of ops[j].
    const keys = ops.map((op, id) => (ring.keys[id] = this.p.keys.entry(`\0warm-up ${op}`, 'warm_up', [['op', String(op)]])));
    for (const key of keys) key.hist = null; // not a series of the endpoint
    const { header, f64, u64 } = ringViews(desc.sab);
    let tail = 0;
    for (let r = 0; r < rounds; r++) {
      this.begin();
      this.kernelOn = r % 2 === 1;
      for (let k = 0; k < 1000; k++, tail++) {
        const i = (tail & 1023) * 2;
        const id = k % ops.length;
        const op = ops[id]!;
        f64[i] = recordHeader(id, op);
        if (op === Op.CounterU64) u64[i + 1] = BigInt(k);
        else f64[i + 1] = k;
      }
      Atomics.store(header, RingSlot.Tail, tail);
      while (this.drain(ring, true) > 0);
      this.encoder.finish()?.release();
    }
    this.kernelRecords = this.kernelMisses = 0;
    for (const key of keys) this.p.keys.release(key);
    this.kernel?.drop(ring);
  }

  /** Applies control messages that come before everything else (a restart's replay). */
  apply(ring: RingReader, msgs: readonly ControlMessage[]): void {
    for (const m of msgs) this.control(ring, m);
  }

  /**
   * At a shutdown, once threads have been told that no client is connected: drains the rings
   * until none holds records written but not published (a thread publishes its last partial
   * block at the end of its job), or until `deadline` (ms since the epoch).
   */
  async settle(deadline: number): Promise<void> {
    this.stopping = true; // no more rounds of its own: this one runs them
    this.waiter.stop();
    // The recorder's own thread is the one closing (or exiting): only other threads can be writing.
    if (this.attached.size > 0) await sleep(Math.min(SETTLE_GRACE_MS, Math.max(0, deadline - Date.now())));
    for (;;) {
      this.drainUntil(deadline);
      if (!this.rings.some((r) => r.unpublished() > 0) || Date.now() >= deadline) return;
      await sleep(1);
    }
  }

  /**
   * Stops waiting and drains the rings (until `deadline`). Clients are told in-band of the
   * records left in them: written but never published (a thread stuck in a synchronous loop), or
   * held back behind a control message that never came. (`stats()` counts them after the close,
   * from what is left in the rings, with whatever threads write after this.)
   */
  stop(deadline: number): void {
    this.stopping = true;
    this.waiter.stop();
    this.levels?.stop();
    this.drainUntil(deadline);
    let stranded = 0;
    for (const r of this.rings) stranded += r.untaken();
    if (stranded > 0) this.p.transport.lose(Loss.ClientQueue, stranded);
    this.p.counters.publish();
  }

  /**
   * One pass over every ring: takes their records, encodes them into one chunk for every
   * client, and tells clients what was lost. Returns how much it did (records and control
   * messages); 0 means there was nothing to do.
   */
  round(): number {
    const { counters, transport } = this.p;
    const invalidBefore = counters.invalid;
    const fullBefore = counters.ringFull;
    let taken = 0;
    this.controlsApplied = 0;
    this.busy = false;
    this.begin();
    const live = (this.live = transport.clientCount > 0);
    this.folding = this.p.replay !== undefined && (this.foldNext || (this.foldUntil > 0 && performance.now() < this.foldUntil));
    this.foldNext = false;
    if (this.foldUntil > 0 && performance.now() >= this.foldUntil) this.foldUntil = 0;
    transport.cork();
    const rings = this.rings;
    for (let i = 0; i < rings.length; i++) {
      const ring = rings[i]!;
      const n = this.drain(ring, live);
      counters.recorded += n;
      taken += n;
      ring.takenSinceWait += n;
      this.takeFullDrops(ring);
      this.commit(ring);
    }
    if (taken > 0) this.lastWorkAt = performance.now();
    this.forgetFinishedRings();
    if (live && taken > 0) this.judgeKernel();
    if (live && (taken > 0 || counters.ringFull !== fullBefore)) this.levels?.moved();
    this.send();
    if (counters.invalid !== invalidBefore) transport.lose(Loss.Invalid, counters.invalid - invalidBefore);
    // Published before the writes, even inside a hold: a client that reads stats() when the
    // frames (or a loss report) reach it finds them counted.
    counters.publish();
    transport.uncork();
    return taken + this.controlsApplied;
  }

  /**
   * `replayOnConnect`: every total, for a client about to be added. A round first takes what the
   * rings hold (and the keys and metadata announced so far) for the clients already there, so
   * that the totals cover every record before the new client's live stream and none after it,
   * and folds in what threads recorded while no client was connected. The app already reads
   * that a client is connected (the transport said so first), so new records go to the rings;
   * state written late is folded, and sent, by the rounds of the next `FOLD_AFTER_CONNECT_MS`.
   */
  replayFrames(): Chunk | null {
    const replay = this.p.replay;
    if (replay === undefined) return null;
    this.foldUntil = performance.now() + FOLD_AFTER_CONNECT_MS;
    // At least one round, which folds every state page.
    while (this.round() > 0 && this.busy);
    // Rounds until the window ends, even with nothing else to do (an idle worker would sleep).
    this.waiter.poke();
    return this.p.replayOnConnect ? replay.frames(this.p.clock.now()) : null;
  }

  /**
   * Before a scrape of the Prometheus endpoint: takes what the rings hold and folds every
   * thread's state, so that the totals are those of every record published so far (within
   * `deadline`: a scrape does not wait for a ring that keeps filling).
   */
  foldForScrape(deadline: number): void {
    this.foldNext = true;
    while (this.round() > 0 && this.busy && Date.now() < deadline);
  }

  /**
   * For a capture's read: takes every record published so far and folds every thread's state, as
   * for a scrape. Returns whether that is all there is: false while a ring's control message, or a
   * ring's announcement, is still on its way (the records behind it are not taken yet; they are
   * once it comes, in a turn of this worker's event loop), and, with `unpublished`, while a ring
   * holds records its thread wrote and has not published yet (it does at the end of its job).
   */
  takeAll(deadline: number, unpublished: boolean): boolean {
    this.foldForScrape(deadline);
    if (this.ringsAttached < Atomics.load(this.p.ctl, Ctl.Attaches)) return false;
    return this.rings.every((r) => r.caughtUp() && !(unpublished && r.unpublished() > 0));
  }

  /**
   * A capture waited for a ring's announcement past its grace: it is not coming (a worker started
   * after a crash hears only of the rings that are still alive). Later reads stop waiting for it.
   */
  stopWaitingForAttaches(): void {
    this.ringsAttached = Math.max(this.ringsAttached, Atomics.load(this.p.ctl, Ctl.Attaches));
  }

  /** A capture's `reset()`, after {@link takeAll}: forgets every total and every histogram's observations. */
  resetTotals(): void {
    this.p.replay?.clear(() => this.commit(this.p.main));
    this.p.histograms?.reset();
  }

  /**
   * Commits what a ring's drain changed in shared memory (its head, the drops taken, totals and
   * folds) with the figures, as one entry of the journal.
   */
  private commit(ring: RingReader): void {
    const replay = this.p.replay;
    if (!ring.dirty && (replay === undefined || replay.pending(ring) === 0)) return;
    const journal = this.journal;
    journal.put(Entry.Head, ring.key, ring.head, ring.fullSeen);
    replay?.journal(journal, ring);
    const c = this.p.counters;
    journal.put(Entry.Figures, c.recorded, c.ringFull, c.invalid);
    journal.commit();
    ring.dirty = false;
  }

  /** Starts a batch: its timestamp, and its key prefixes; decides whether the kernel encodes it. */
  private begin(): void {
    this.encoder.begin(this.p.clock.now());
    if (this.kernel === undefined) return;
    this.kernel.begin();
    this.kernelOn = this.kernelRest === 0;
  }

  /**
   * After a round that encoded records: rests the kernel if it sent back too many of them to the
   * encoder, or counts a round of its rest. (Rounds that encode nothing, like a wake-up that
   * finds only key announcements, leave both alone.)
   */
  private judgeKernel(): void {
    if (this.kernel === undefined) return;
    if (!this.kernelOn) this.kernelRest--;
    else if (this.kernelMisses * KERNEL_MISS_RATIO > this.kernelRecords && this.p.kernel !== 'always') this.kernelRest = KERNEL_REST_ROUNDS;
    this.kernelRecords = this.kernelMisses = 0;
  }

  /**
   * How long to wait for the next batch: a flush interval, halved while the fastest ring, at the
   * rate it filled since the last wait began, would pass a quarter of its size in that time. The
   * worker then comes back by itself before a producer would ring (at half), which costs the
   * app's thread a system call each time: at 1 M records/s into the default 16 384 records,
   * 250 a second with a fixed 100 ms.
   */
  private flushWait(): number {
    const now = performance.now();
    // Over the last wait and the rounds after it (a wake-up can take several, each with a budget).
    const elapsed = Math.max(now - this.waitedAt, 1);
    this.waitedAt = now;
    let fastest = 0;
    const rings = this.rings;
    for (let i = 0; i < rings.length; i++) {
      const ring = rings[i]!;
      if (ring.takenSinceWait > fastest * ring.limitRecords) fastest = ring.takenSinceWait / ring.limitRecords;
      ring.takenSinceWait = 0;
    }
    const fillPerMs = fastest / elapsed;
    let ms = this.p.flushIntervalMs;
    while (ms > 1 && ms * fillPerMs > 0.25) ms = Math.max(1, ms >> 1);
    return ms;
  }

  /**
   * A ring is half full. (Indexed loops here and in `round`: a round runs a few times a
   * second at low rates, in code V8 has not optimised, where `for…of` allocates an iterator.)
   */
  private backlogged(): boolean {
    const rings = this.rings;
    for (let i = 0; i < rings.length; i++) if (rings[i]!.backlogged()) return true;
    return false;
  }

  /** Records or control messages can be processed now. */
  private hasWork(): boolean {
    const rings = this.rings;
    for (let i = 0; i < rings.length; i++) if (rings[i]!.hasWork()) return true;
    return false;
  }

  /** Hands the frames encoded so far to every client. */
  private send(): void {
    const chunk = this.encoder.finish();
    if (chunk === null) return;
    this.p.transport.broadcast(chunk);
    chunk.release(); // the clients hold it now
  }

  /** Counts the records a ring's producer dropped because it was full; connected clients are told. */
  private takeFullDrops(ring: RingReader): void {
    const n = ring.takeFullDrops();
    if (n === 0) return;
    this.p.counters.ringFull += n;
    this.p.transport.lose(Loss.RingFull, n);
  }

  /**
   * Takes up to a round's budget of records from one ring, applying its control messages where
   * they belong; encodes the records if `live`. Stops early, before a control message, when the
   * ring's control budget for the round is spent.
   */
  private drain(ring: RingReader, live: boolean): number {
    this.controlBudget = CONTROL_BUDGET;
    const limit = ring.limit();
    // After the tail was read, before the records up to it: see ReplayTable.foldRing.
    if (this.folding) this.p.replay!.foldRing(ring, live ? this.encoder : null, () => this.commit(ring));
    const { u32, f64, mask } = ring.views;
    const encoder = this.encoder;
    const read = live || this.p.replay !== undefined;
    const kernel = live && this.kernelOn ? this.kernel : undefined;
    const first = ring.head;
    const last = ((limit - first) | 0) > ROUND_BUDGET ? (first + ROUND_BUDGET) | 0 : limit;
    let h = first;
    // Records run from one control message's position to the next: the inner loop checks
    // nothing else per record but the batch's room.
    while (h !== last && this.controlsAt(ring, h)) {
      const end = ring.nextControlBefore(h, last);
      if (!read) h = end;
      if (kernel !== undefined) h = this.encodeRun(kernel, ring, h, end);
      else
        for (; h !== end && !encoder.full; h = (h + 1) | 0) {
          const i = (h & mask) * 2;
          const header = f64[i]!;
          this.record(ring, header & (KEY_ID_LIMIT - 1), header >>> 24, f64[i + 1]!, u32, 2 * i + 2, live);
        }
      if (h !== end) break; // the batch is full
    }
    // A budget ran out (records, or control messages due here): the next round comes at once.
    if (h !== limit || !this.controlsAt(ring, h)) this.busy = true;
    if (h !== first) ring.advance(h);
    return (h - first) | 0;
  }

  /**
   * Encodes the records from `h` to `end` with the kernel, giving the encoder those it cannot
   * take; returns where it stopped (`end`, or before it when the batch is full).
   */
  private encodeRun(kernel: FrameKernel, ring: RingReader, h: number, end: number): number {
    const n = (end - h) | 0;
    kernel.load(ring, h, n);
    const { u32, f64, mask } = ring.views;
    let i = 0;
    while ((i = kernel.encode(ring, i, n, this.encoder)) !== n && kernel.stop === KernelStop.NeedsEncoder) {
      const at = (((h + i) | 0) & mask) * 2;
      const header = f64[at]!;
      const id = header & (KEY_ID_LIMIT - 1);
      this.record(ring, id, header >>> 24, f64[at + 1]!, u32, 2 * at + 2, true);
      kernel.learn(ring, id, ring.keys[id], this.encoder);
      i++;
      this.kernelMisses++;
    }
    this.kernelRecords += i;
    return (h + i) | 0;
  }

  /** Applies a ring's control messages due at position `h`; false if the budget ran out first. */
  private controlsAt(ring: RingReader, h: number): boolean {
    while (ring.hasControlDue(h)) {
      if (this.controlBudget === 0) return false;
      this.controlBudget--;
      this.controlsApplied++;
      this.control(ring, ring.controlDue(h)!);
    }
    return true;
  }

  /**
   * Validates one record; if `live`, encodes it for the clients, and with `replayOnConnect` adds
   * it to the totals. Invalid values are counted (when live), never sent.
   */
  private record(ring: RingReader, id: number, op: number, v: number, u32: Uint32Array, valueAt: number, live: boolean): void {
    const key = ring.keys[id];
    if (key !== undefined) {
      switch (op) {
        case Op.Counter:
          // The usual increment, an integer below 2^32, in one test: `v >>> 0` is v only then.
          if (v >>> 0 === v) return this.counter(key, v, 0, live);
          if (Number.isSafeInteger(v) && v >= 0) {
            // Not `v % 2 ** 32`: optimised code computes a float modulus with a call into C.
            const hi = Math.floor(v / 0x100000000);
            return this.counter(key, v - hi * 0x100000000, hi, live);
          }
          break;
        case Op.CounterU64:
          return this.counter(key, u32[valueAt + LOW_WORD]!, u32[valueAt + 1 - LOW_WORD]!, live);
        case Op.GaugeSet:
          if (v === v) return this.gauge(key, GaugeOp.Set, v, live);
          break;
        case Op.GaugeIncrement:
          if (v === v) return this.gauge(key, GaugeOp.Increment, v, live);
          break;
        case Op.GaugeDecrement:
          if (v === v) return this.gauge(key, GaugeOp.Decrement, v, live);
          break;
        case Op.Histogram:
          if (v === v) {
            if (live) this.encoder.histogram(key, v);
            if (this.p.histograms !== undefined) (key.hist === undefined ? (key.hist = this.p.histograms.of(key)) : key.hist)?.record(v);
            return;
          }
          break;
      }
      if (!live && this.p.histograms === undefined) return;
      if (!key.warned) {
        key.warned = true;
        this.p.warn(`metrics-exporter-tcp: dropped an invalid value for ${key.text} (further ones are counted in stats().dropped.invalid)`, 'MTCP_INVALID_VALUE');
      }
    }
    // Counted while a client is connected, or always with the endpoint: its histograms are read
    // whether or not one is (counters and gauges with no client go to their threads' state, which
    // drops invalid values).
    if (live || this.p.histograms !== undefined) this.p.counters.invalid++;
  }

  private counter(key: KeyEntry, lo: number, hi: number, live: boolean): void {
    if (live) this.encoder.counter(key, lo, hi);
    if (key.slot >= 0) this.p.replay!.counter(key.slot, lo, hi);
  }

  private gauge(key: KeyEntry, op: GaugeOp, v: number, live: boolean): void {
    if (live) this.encoder.gauge(key, op, v);
    if (key.slot >= 0) this.p.replay!.gauge(key.slot, op, v);
  }

  private control(ring: RingReader, m: ControlMessage): void {
    if (m.t === 'key') {
      const old = ring.keys[m.id];
      const key = this.p.keys.entry(m.canonical, m.name, m.labels);
      ring.keys[m.id] = key;
      this.kernel?.forget(ring, m.id);
      if (old !== undefined) this.p.keys.release(old); // announced again (a restarted worker's hello)
      this.p.counters.keys = this.p.keys.size;
      if (m.statePage !== undefined) ring.statePages[Math.floor(m.id / STATE_PAGE_KEYS)] = { f64: new Float64Array(m.statePage), i32: new Int32Array(m.statePage) };
      this.p.replay?.assign(key, m.canonical);
      // Its state is folded before its records: what its thread recorded with no client connected
      // before the key reached the worker (after this round's fold, or after the fold window; with
      // no client connected, the next connection folds it).
      if (this.folding || this.live) this.p.replay?.foldKeyOf(ring, m.id, this.live ? this.encoder : null);
    } else {
      const frame = encodeMetadata(m.name, m.kind, m.unit, m.description);
      if (!this.p.metadata.set(m.name, frame, { kind: m.kind, unit: m.unit, description: m.description, buckets: m.buckets })) return;
      // Metric frames of this round that precede the metadata go out first.
      this.send();
      this.p.transport.broadcastMetadata(frame);
    }
  }

  /**
   * Drops rings whose thread has gone once they are drained. A thread that exits normally
   * marks its ring closed; one that was terminated cannot, so on Linux the worker also checks,
   * now and then, whether the ring's thread still exists.
   */
  private forgetFinishedRings(): void {
    if (this.attached.size === 0) return;
    const now = Date.now();
    const checkThreads = process.platform === 'linux' && now - this.lastLiveness >= LIVENESS_MS;
    if (checkThreads) this.lastLiveness = now;
    for (const [id, ring] of this.attached) {
      if (checkThreads && ring.diedAt === undefined && ring.tid !== 0 && !existsSync(`/proc/self/task/${ring.tid}`)) {
        // Gone without its exit hook (terminated): what it wrote but never published is taken.
        ring.diedAt = now;
        ring.markClosed();
        ring.adoptUnpublished();
      }
      if (ring.diedAt !== undefined && ring.missingControls > 0 && now - ring.diedAt >= CONTROL_GRACE_MS) ring.stopWaitingForControls();
      if (!ring.finished()) continue;
      this.takeFullDrops(ring); // its last drops, if any
      // What it recorded with no client connected.
      this.p.replay?.foldRing(ring, this.live ? this.encoder : null, () => this.commit(ring));
      this.commit(ring);
      this.p.released(id);
      for (const k of ring.keys) if (k !== undefined) this.p.keys.release(k);
      this.attached.delete(id);
      this.rings.splice(this.rings.indexOf(ring), 1);
      this.levels?.retire(ring);
      this.kernel?.drop(ring);
      this.p.counters.attachedThreads = this.attached.size;
      this.p.counters.keys = this.p.keys.size;
      this.p.counters.changed();
    }
  }
}
