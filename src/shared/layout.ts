/**
 * Memory layout shared by the app side (producers) and the transport worker (consumer).
 * Both sides import these numbers from here so they can never disagree.
 *
 * Two kinds of SharedArrayBuffer exist:
 * - one **control block** per exporter: the "clients connected" flag, the consumer's parked
 *   flag and doorbell, and the statistics the worker publishes;
 * - one **ring** per producing thread: a header with head/tail indices and a power-of-two
 *   array of 16-byte records.
 *
 * Indices that different threads write live 64 bytes apart so that a producer storing its
 * tail does not invalidate the cache line the consumer is reading its head from.
 */
import { threadId } from 'node:worker_threads';

/**
 * Int32 slots of the control block. A const enum, so that each use is a number in the code:
 * an imported constant is a load and a check in the hot path, where the early exit is the
 * load of `Ctl.Clients` alone.
 */
export const enum Ctl {
  /** Number of connected clients (written by the worker). */
  Clients = 0,
  /** How the worker waits, one of {@link Park}. */
  Parked = 16,
  /** Bumped by producers to wake a parked worker. */
  Doorbell = 32,
  /** The transport worker's OS thread id on Linux (0 elsewhere), for CPU accounting. */
  WorkerTid = 33,
  /**
   * Set to 1 by the app's main thread when its process is exiting without `close()`; it then
   * waits (bounded) on {@link Ctl.Flushed} while the worker delivers what was recorded.
   */
  Exit = 34,
  /** Set to 1 (and notified) by the worker once a shutdown has delivered what it could. */
  Flushed = 35,
  /**
   * For `captureMetrics()` (metrics-exporter-tcp/testing): bumped by the app's thread to ask the
   * worker for something, after it has stored what in {@link Ctl.AskOp}; the worker answers by
   * storing the same number in {@link Ctl.Answered} (and notifying it).
   */
  Ask = 36,
  /** What the last ask wants, one of {@link Ask}. */
  AskOp = 37,
  /** The last ask the worker has answered (see {@link Ctl.Ask}). */
  Answered = 38,
  /**
   * Rings attached from other threads so far, bumped by `attach()` after it announced the ring:
   * a worker that has heard of fewer knows an announcement is on its way.
   */
  Attaches = 39,
  /**
   * Offset of the statistics: a sequence number, then two Int32 words (low, high) per figure,
   * in the order of {@link Stat}. Only the worker writes them (see `shared/stats-block.ts`).
   */
  Stats = 48,
}
/** What a capture asks its worker ({@link Ctl.AskOp}). */
export const enum Ask {
  /** Take every record published so far and answer with the totals. */
  Read = 1,
  /** The same, then forget every total. */
  Reset = 2,
}
/**
 * How the worker is waiting. Waking it is a system call that costs the app's thread
 * microseconds (tens of them in a virtual machine), and every wake-up costs the worker a round;
 * so producers ring only when it matters, and the worker works in batches:
 * - `Flush`: the worker drained records and waits a flush interval (`flushIntervalMs`, shorter
 *   while records flow fast) for the next batch; producers ring only when a ring is half full.
 *   Records then wait at most a flush interval and cost the app no syscall.
 * - `Idle`: a flush interval passed with nothing to do; the worker sleeps until the next
 *   publish (or control message) rings, then gives that batch a flush interval to gather.
 */
export const enum Park {
  Running = 0,
  Flush = 1,
  Idle = 2,
}

/** Figures of the statistics area, in the order `stats()` reports them. */
export const enum Stat {
  Recorded = 0,
  RingFull,
  ClientQueue,
  Invalid,
  MetadataDropped,
  Clients,
  RejectedClients,
  FramesSent,
  BytesSent,
  AttachedThreads,
  Keys,
  Wakeups,
  /** Clients connected when the last shutdown began: each lost what threads recorded too late for it. */
  ClientsAtClose,
}
export const STAT_COUNT = 13;
export const CTL_BYTES = (Ctl.Stats + 1 + 2 * STAT_COUNT) * 4;

/** Int32 slots of a ring's header (a const enum, as {@link Ctl} is). */
export const enum RingSlot {
  /** The consumer's read position (free-running, wraps at 2^32). */
  Head = 0,
  /**
   * Written by the worker: the value of {@link RingSlot.FullDrops} it has counted so far. A
   * fresh ring starts at 0, so drops made before any worker has seen the ring are counted; a
   * restarted worker starts where the previous one stopped.
   */
  FullTaken = 1,
  /** The producer's published write position (free-running, wraps at 2^32). */
  Tail = 16,
  /** Records the producer dropped because the ring was full (wraps at 2^32). */
  FullDrops = 17,
  /**
   * Control messages the producer has sent (bumped after each one). A worker that has received
   * fewer knows some are on their way and does not drain past them.
   */
  ControlSent = 18,
  /** Set to 1 when the producing thread is gone; the worker then drains and forgets the ring. */
  Closed = 19,
  /** The producing thread's OS thread id (Linux), so that the worker can tell it died. */
  Tid = 20,
}
/** Bytes before the first record. */
export const RING_HEADER_BYTES = 128;

/**
 * A record is 16 bytes: an 8-byte header, then an 8-byte value (a double, or a raw u64 for
 * counters given as bigint). Sixteen bytes keep the value aligned, so it is one Float64Array /
 * BigUint64Array element (no DataView), and a record never straddles the end of the ring,
 * whose slot count is a power of two.
 *
 * The header holds `keyId + op * 2^24` as a double rather than two u32 words: the hot path then
 * writes a whole record through one Float64Array, which measured 1.5 ns less per record than
 * u32 + u32 + f64 stores. Key ids stay below 2^24 (`maxKeys` is capped there).
 */
export const RECORD_BYTES = 16;
/** The host stores numbers little-endian (the rings hold them in the host's order). */
export const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Largest key id a header can carry, plus one. */
export const KEY_ID_LIMIT = 1 << 24;
/** The id records of keys refused by `maxKeys` carry: never given to a real key. */
export const REFUSED_KEY_ID = KEY_ID_LIMIT - 1;

/** The header of a record (see {@link RECORD_BYTES}). */
export function recordHeader(id: number, op: Op): number {
  return id + op * KEY_ID_LIMIT;
}

/**
 * What a record means. The value's type follows from the op. A header of 0 (op 0) marks an empty
 * slot: the consumer zeroes each slot it has read, so after a producing thread has died, the
 * records it wrote but never published are the non-empty slots that follow the published tail.
 */
export const enum Op {
  /** Counter increment given as a number (must be a safe integer >= 0; checked by the worker). */
  Counter = 1,
  /** Counter increment given as a bigint, stored as a raw u64 (range checked by the producer). */
  CounterU64 = 2,
  GaugeSet = 3,
  GaugeIncrement = 4,
  GaugeDecrement = 5,
  Histogram = 6,
  /** A value the producer already knows is invalid (e.g. a negative bigint): counted, not sent. */
  Invalid = 7,
}

/**
 * Records in a ring at which a worker waiting out a flush interval is woken early (half the
 * ring): it then has the other half of headroom to drain it. A worker that sees records flow
 * fast wakes by itself before that (see the pipeline's flush wait), so that this ring, a
 * system call on the app's thread, is for sudden bursts.
 */
export function wakeMark(limit: number): number {
  return Math.max(1, limit >> 1);
}

/**
 * State for `replayOnConnect`, per thread: pages of {@link STATE_PAGE_KEYS} keys, each key
 * {@link STATE_BYTES} of shared memory, read through a Float64Array and an Int32Array. The
 * producer writes its part when it finds no client connected (its records are then not sent,
 * so this is how the worker learns of them); the worker writes its part when it folds them into
 * the exporter's totals: when a client connects, for a while after (a producer that read "no
 * client" just before may write its state a little later), and when the thread ends. Both live
 * in shared memory, so a restarted worker folds only what its predecessor did not.
 *
 * A counter adds to an Int32 first: a double's add-and-store chain cost 2.3 ns per increment
 * where an integer's costs 0.3; past 2^31 (or for a value that is not an int32) the sum moves to
 * the double. Indices below are in units of their own view (doubles or int32s) from the start
 * of the key's slots.
 */
export const STATE_PAGE_KEYS = 1024;
/** A page (or one key's slots) of `replayOnConnect` state, through both of its views. */
export interface StateViews {
  readonly f64: Float64Array;
  readonly i32: Int32Array;
}
/** Bytes per key: one 64-byte cache line. */
export const STATE_BYTES = 64;
export const enum State {
  /** f64, producer: counter increments with no client that did not fit `CounterFast`. */
  CounterSpill = 0,
  /** i32, producer: counter increments with no client, while their sum fits an int32. */
  CounterFast = 2,
  /** i32, producer: twice the gauge sets made with no client (mod 2^32); odd while one is being written (a seqlock). */
  GaugeSets = 3,
  /** f64, producer: the last of them. */
  GaugeSetValue = 2,
  /** f64, producer: gauge increments minus decrements since that set (or since the start). */
  GaugeDelta = 3,
  /** f64, worker: `CounterSpill + CounterFast` as last folded. */
  FoldedCounter = 4,
  /** i32, worker: `GaugeSets` as last folded. */
  FoldedGaugeSets = 10,
  /** f64, worker: `GaugeDelta` as last folded. */
  FoldedGaugeDelta = 6,
}

/**
 * The exporter's replay table (one per exporter, for `replayOnConnect`): per key the worker
 * has given a slot, {@link REPLAY_SLOTS} doubles. It lives in shared memory so that the totals
 * survive a worker restart.
 */
export const REPLAY_SLOTS = 4;
export const enum Replay {
  /** The counter's total, low 32 bits. */
  CounterLo = 0,
  /** The counter's total divided by 2^32. */
  CounterHi,
  /** The gauge's value. */
  Gauge,
  /** Which of them the key has been used as: 1 counter, 2 gauge. */
  Kinds,
}

/**
 * The worker's journal (see `worker/journal.ts`): {@link JOURNAL_HEADER_BYTES} of header (an
 * Int32 state word and entry count, then the committed figures as doubles), then entries of
 * {@link JOURNAL_ENTRY} doubles. A commit covers one ring: its head and the figures, and with
 * `replayOnConnect` one entry per replay slot and per folded key it changed. At most: the slots
 * of a round's records of the ring (4096), and 1023 folds with their slots (511 left by a fold,
 * which commits every 512, and 512 keys announced in the round): 6144 entries in all.
 */
export const JOURNAL_HEADER_BYTES = 64;
export const JOURNAL_ENTRY = 6;

/** Bytes of an exporter's journal. */
export function journalBytes(replay: boolean): number {
  return JOURNAL_HEADER_BYTES + (replay ? 8192 : 4) * JOURNAL_ENTRY * 8;
}

/** Largest number of records a ring holds when `bufferSize` is `null` (16 MiB of ring). */
export const UNBOUNDED_RECORDS = 1 << 20;

/** Ring slot count for a buffer size: the next power of two, at least 2. */
export function ringSlots(limit: number): number {
  let slots = 2;
  while (slots < limit) slots *= 2;
  return slots;
}

/** How the app side describes a ring to the worker (structured-clonable). */
export interface RingDescriptor {
  readonly sab: SharedArrayBuffer;
  /** Records the producer may hold at once (the buffer size); at most the slot count. */
  readonly limit: number;
  /** The producing thread's `worker_threads` `threadId` (0 on the main thread): how fill levels name it. */
  readonly thread: number;
}

/** Allocates a ring for `limit` records, written by the calling thread. */
export function createRing(limit: number): RingDescriptor {
  const sab = new SharedArrayBuffer(RING_HEADER_BYTES + ringSlots(limit) * RECORD_BYTES);
  return { sab, limit, thread: threadId };
}

/** The typed views both sides use over a ring. */
export interface RingViews {
  readonly header: Int32Array;
  /** Two elements per record: header, value. */
  readonly f64: Float64Array;
  /** Four elements per record: the u64 value's halves are elements 2 and 3. */
  readonly u32: Uint32Array;
  readonly u64: BigUint64Array;
  readonly mask: number;
}

/**
 * Records written after a ring's published tail and not published yet: the non-empty slots that
 * follow it (a consumed slot is emptied before the producer gets it back), at most as many as the
 * producer could still write with the consumer at `head`. While the producer lives this is a
 * hint (it may be writing one now); once it has stopped writing, a count.
 */
export function unpublishedRecords(v: RingViews, head: number, limit: number): number {
  const tail = Atomics.load(v.header, RingSlot.Tail);
  const room = limit - ((tail - head) | 0);
  let n = 0;
  while (n < room && v.f64[((tail + n) & v.mask) * 2] !== 0) n++;
  return n;
}

/**
 * What a ring holds that no consumer has taken: records (published or not) after the head the
 * last consumer committed, and ring-full drops it has not counted. After the exporter has closed,
 * what threads recorded too late for it.
 */
export function untaken(desc: RingDescriptor): { records: number; drops: number } {
  const v = ringViews(desc.sab);
  const head = Atomics.load(v.header, RingSlot.Head);
  return {
    records: ((Atomics.load(v.header, RingSlot.Tail) - head) | 0) + unpublishedRecords(v, head, desc.limit),
    drops: (Atomics.load(v.header, RingSlot.FullDrops) - Atomics.load(v.header, RingSlot.FullTaken)) >>> 0,
  };
}

export function ringViews(sab: SharedArrayBuffer): RingViews {
  const slots = (sab.byteLength - RING_HEADER_BYTES) / RECORD_BYTES;
  return {
    header: new Int32Array(sab, 0, RING_HEADER_BYTES / 4),
    u32: new Uint32Array(sab, RING_HEADER_BYTES, slots * 4),
    f64: new Float64Array(sab, RING_HEADER_BYTES, slots * 2),
    u64: new BigUint64Array(sab, RING_HEADER_BYTES, slots * 2),
    mask: slots - 1,
  };
}
