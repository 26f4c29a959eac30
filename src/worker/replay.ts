import { REPLAY_SLOTS, Replay, STATE_PAGE_KEYS, State, type StateViews } from '../shared/layout.js';
import type { Protocol } from '../shared/messages.js';
import type { Chunk } from './chunk.js';
import { FrameEncoder, GaugeOp } from './encoder.js';
import { Entry, type Journal } from './journal.js';
import { KeyTable, type KeyEntry } from './keys.js';
import { stateIndex, type RingReader } from './ring-reader.js';
import type { ValueSeries } from './scrape/exposition.js';

const WORD = 2 ** 32;
const COUNTER = 1;
const GAUGE = 2;
/** Folds of one ring a commit holds at most: a ring's fold is committed in parts of this many keys. */
const FOLD_CHECKPOINT = 512;

/**
 * `replayOnConnect`: each counter's total and each gauge's value, as a client connected from the
 * start would have them, kept in the exporter's shared table (so that they survive a worker
 * restart) and sent to every client that connects, after the metadata.
 *
 * Records sent while clients are connected are added as the worker drains them (their order is
 * the stream's order). Records made while no client is connected are not sent: their threads
 * keep them in shared state pages (see `State`), which are folded in when a client connects,
 * for a while after (see `Pipeline`), and when a thread ends; what is folded while clients are
 * connected is sent to them too.
 * Folding goes ring by ring (the recorder's own first, then threads in the order they
 * attached): counters add up; for a gauge, a thread that set it while no client was connected
 * replaces the value with its last set plus its own increments since, and a thread that did not
 * adds its increments and decrements.
 *
 * The worker changes its own copy of the table; the shared one, and what a ring's state pages
 * say was folded, change only when a round commits them through the journal ({@link journal}),
 * so that a worker that dies in the middle of a round counts nothing twice.
 */
export class ReplayTable {
  /** The worker's copy of the table: the shared one as of the last commit, plus this round's changes. */
  private readonly t: Float64Array;
  private readonly shared: Float64Array;
  /** Slots changed since the last commit, and a mark per slot: the commit it was last added for. */
  private readonly dirty: number[] = [];
  private readonly marks: Int32Array;
  private commits = 1;
  private readonly slots = new Map<string, number>();
  /** The key of each slot, for encoding its frames (kept after the key's threads are gone). */
  private readonly entries: KeyEntry[] = [];
  /** Each slot's name and labels, parsed from its key when the endpoint first shows it. */
  private readonly parsed: ({ name: string; labels: Record<string, string> } | undefined)[] = [];
  private readonly capacity: number;
  private readonly encoder: FrameEncoder;
  private warned = false;

  /**
   * @param slots the slots given before (by an earlier worker)
   * @param onSlot tells the app a slot was given, so a restarted worker gets the same
   */
  constructor(
    table: SharedArrayBuffer,
    slots: readonly (readonly [string, number])[],
    protocol: Protocol,
    private readonly onSlot: (canonical: string, slot: number) => void,
    private readonly warn: (message: string, code: string) => void,
  ) {
    this.shared = new Float64Array(table);
    this.t = this.shared.slice();
    this.capacity = this.t.length / REPLAY_SLOTS;
    this.marks = new Int32Array(this.capacity);
    this.encoder = new FrameEncoder(protocol);
    const keys = new KeyTable();
    for (const [canonical, slot] of slots) {
      const { name, labels } = parseKey(canonical);
      this.slots.set(canonical, slot);
      this.entries[slot] = keys.entry(canonical, name, Object.entries(labels));
    }
  }

  /** Gives `key` its slot (once; the same after a restart), or none when the table is full. */
  assign(key: KeyEntry, canonical: string): void {
    if (key.slot >= 0) return;
    let slot = this.slots.get(canonical);
    if (slot === undefined) {
      if (this.slots.size >= this.capacity) {
        if (!this.warned) {
          this.warned = true;
          this.warn(`metrics-exporter-tcp: more than ${this.capacity} keys to replay; later keys are not replayed to new clients`, 'MTCP_MAX_KEYS');
        }
        return;
      }
      slot = this.slots.size;
      this.slots.set(canonical, slot);
      this.onSlot(canonical, slot);
    }
    this.entries[slot] = key;
    key.slot = slot;
  }

  /** Adds `hi * 2^32 + lo` to a counter's total. */
  counter(slot: number, lo: number, hi: number): void {
    const t = this.t;
    const at = slot * REPLAY_SLOTS;
    let low = t[at + Replay.CounterLo]! + lo;
    let high = t[at + Replay.CounterHi]! + hi;
    if (low >= WORD) {
      low -= WORD;
      high++;
    }
    t[at + Replay.CounterLo] = low;
    t[at + Replay.CounterHi] = high % WORD; // a u64 wraps, as it does on the wire
    t[at + Replay.Kinds] = t[at + Replay.Kinds]! | COUNTER;
    this.touch(slot);
  }

  gauge(slot: number, op: GaugeOp, v: number): void {
    const t = this.t;
    const at = slot * REPLAY_SLOTS;
    if (op === GaugeOp.Set) t[at + Replay.Gauge] = v;
    else t[at + Replay.Gauge] = t[at + Replay.Gauge]! + (op === GaugeOp.Increment ? v : -v);
    t[at + Replay.Kinds] = t[at + Replay.Kinds]! | GAUGE;
    this.touch(slot);
  }

  private touch(slot: number): void {
    if (this.marks[slot] === this.commits) return;
    this.marks[slot] = this.commits;
    this.dirty.push(slot);
  }

  /** Puts the slots changed since the last commit, and the folds of `ring`, into the journal's next commit. */
  journal(journal: Journal, ring: RingReader): void {
    const t = this.t;
    for (const slot of this.dirty) {
      const at = slot * REPLAY_SLOTS;
      journal.put(Entry.Slot, slot, t[at + Replay.CounterLo]!, t[at + Replay.CounterHi]!, t[at + Replay.Gauge]!, t[at + Replay.Kinds]!);
    }
    this.dirty.length = 0;
    this.commits++;
    for (const [id, f] of ring.pendingFolds) journal.put(Entry.Fold, ring.key, id, f.counter, f.sets, f.delta);
    ring.pendingFolds.clear(); // the commit that follows writes them into the ring's state pages
  }

  /** Changes waiting for a commit: slots, and folds of `ring`. */
  pending(ring: RingReader): number {
    return this.dirty.length + ring.pendingFolds.size;
  }

  /** Writes a slot into the shared table (from the journal). */
  persist(slot: number, lo: number, hi: number, gauge: number, kinds: number): void {
    setSlot(this.shared, slot, lo, hi, gauge, kinds);
    setSlot(this.t, slot, lo, hi, gauge, kinds); // the same already, but after a crash's recovery
  }

  /**
   * Folds what a ring's thread recorded with no client connected into the totals. With `live`,
   * what is folded is also encoded for the connected clients: it is what they missed (records
   * made by a thread that read "no client" just before one connected). Call it after reading the
   * ring's tail and before draining up to it: the state seen then includes every record the
   * thread made before those it published, so a thread's records apply in their order.
   */
  foldRing(ring: RingReader, live: FrameEncoder | null, checkpoint: () => void): void {
    for (let id = 0; id < ring.keys.length; id++) {
      this.foldKeyOf(ring, id, live);
      if (ring.pendingFolds.size >= FOLD_CHECKPOINT) checkpoint();
    }
  }

  /** {@link foldRing} for one key of the ring (local id `id`). */
  foldKeyOf(ring: RingReader, id: number, live: FrameEncoder | null): void {
    const key = ring.keys[id];
    const page = ring.statePages[Math.floor(id / STATE_PAGE_KEYS)];
    if (key === undefined || key.slot < 0 || page === undefined) return;
    this.foldKey(ring, id, key, page, live);
  }

  private foldKey(ring: RingReader, id: number, key: KeyEntry, page: StateViews, live: FrameEncoder | null): void {
    const { f64, i32 } = page;
    const { d, w } = stateIndex(id);
    const was = ring.folded(id, page);
    const now = { ...was };
    // Two sums that only grow (see ReplayCounterHandle): what is read is at most the true total.
    const total = f64[d + State.CounterSpill]! + i32[w + State.CounterFast]!;
    const added = total - was.counter;
    if (added > 0) {
      const lo = added % WORD;
      const hi = Math.floor(added / WORD);
      this.counter(key.slot, lo, hi);
      live?.counter(key, lo, hi);
      now.counter = total;
    }
    // The gauge's set count is a seqlock (see ReplayGaugeHandle.set): read until it is even and
    // unchanged across the read; a set being written right now is folded next time.
    for (let tries = 0; tries < 64; tries++) {
      const sets = i32[w + State.GaugeSets]!;
      if ((sets & 1) !== 0) continue;
      const value = f64[d + State.GaugeSetValue]!;
      const delta = f64[d + State.GaugeDelta]!;
      if (i32[w + State.GaugeSets] !== sets) continue;
      if (sets !== was.sets) {
        this.gauge(key.slot, GaugeOp.Set, value + delta);
        live?.gauge(key, GaugeOp.Set, value + delta);
        now.sets = sets;
      } else if (delta !== was.delta) {
        const change = delta - was.delta;
        this.gauge(key.slot, GaugeOp.Increment, change);
        if (change > 0) live?.gauge(key, GaugeOp.Increment, change);
        else live?.gauge(key, GaugeOp.Decrement, -change);
      }
      now.delta = delta;
      break;
    }
    if (now.counter !== was.counter || now.sets !== was.sets || now.delta !== was.delta) ring.pendingFolds.set(id, now);
  }

  /**
   * Every counter's total and every gauge's value, as the Prometheus endpoint shows them (a key
   * used as both is both).
   */
  *values(): Generator<ValueSeries, void, undefined> {
    const t = this.t;
    for (let slot = 0; slot < this.slots.size; slot++) {
      const key = this.entries[slot];
      if (key === undefined) continue;
      const at = slot * REPLAY_SLOTS;
      const kinds = t[at + Replay.Kinds]!;
      if (kinds === 0) continue;
      const { name, labels } = (this.parsed[slot] ??= parseKey(key.canonical));
      const { canonical } = key;
      if (kinds & COUNTER) yield { canonical, name, labels, kind: 'counter', lo: t[at + Replay.CounterLo]!, hi: t[at + Replay.CounterHi]! };
      if (kinds & GAUGE) yield { canonical, name, labels, kind: 'gauge', lo: t[at + Replay.Gauge]!, hi: 0 };
    }
  }

  /**
   * Forgets every total (a capture's `reset()`): each slot reads as never used until it is
   * recorded again. Call it once every record and state taken so far is in the totals: later
   * folds add only what the threads record from now on. `checkpoint` commits what is changed so
   * far (a commit holds a bounded number of slots).
   */
  clear(checkpoint: () => void): void {
    const t = this.t;
    for (let slot = 0; slot < this.slots.size; slot++) {
      if (t[slot * REPLAY_SLOTS + Replay.Kinds] === 0) continue;
      setSlot(t, slot, 0, 0, 0, 0);
      this.touch(slot);
      if (this.dirty.length >= FOLD_CHECKPOINT) checkpoint();
    }
    checkpoint();
  }

  /** One counter frame per counter (its total) and one absolute gauge frame per gauge, stamped `nowMs`. */
  frames(nowMs: number): Chunk | null {
    const t = this.t;
    this.encoder.begin(nowMs);
    for (let slot = 0; slot < this.slots.size; slot++) {
      const key = this.entries[slot];
      const at = slot * REPLAY_SLOTS;
      const kinds = t[at + Replay.Kinds]!;
      if (key === undefined) continue;
      if (kinds & COUNTER) this.encoder.counter(key, t[at + Replay.CounterLo]!, t[at + Replay.CounterHi]!);
      if (kinds & GAUGE) this.encoder.gauge(key, GaugeOp.Set, t[at + Replay.Gauge]!);
    }
    return this.encoder.finish();
  }
}

/** A key's name and labels, from the registry's canonical form (`[name, labels]` as JSON). */
export function parseKey(canonical: string): { name: string; labels: Record<string, string> } {
  const [name, labels = []] = JSON.parse(canonical) as [string, [string, string][]?];
  return { name, labels: Object.fromEntries(labels) };
}

function setSlot(t: Float64Array, slot: number, lo: number, hi: number, gauge: number, kinds: number): void {
  const at = slot * REPLAY_SLOTS;
  t[at + Replay.CounterLo] = lo;
  t[at + Replay.CounterHi] = hi;
  t[at + Replay.Gauge] = gauge;
  t[at + Replay.Kinds] = kinds;
}
