import { STAT_COUNT, Stat } from '../shared/layout.js';
import type { StatsBlock } from '../shared/stats-block.js';

/** What the worker counts; published into the control block for the app's `stats()`. */
export class Counters {
  recorded = 0;
  ringFull = 0;
  clientQueue = 0;
  invalid = 0;
  metadataDropped = 0;
  clients = 0;
  rejectedClients = 0;
  framesSent = 0;
  bytesSent = 0;
  attachedThreads = 0;
  keys = 0;
  wakeups = 0;
  clientsAtClose = 0;
  /** Depth of {@link hold}s: while above 0, changes are published when the outermost ends. */
  private holds = 0;
  private dirty = false;
  private readonly values = new Float64Array(STAT_COUNT);

  /** Starts from the figures already published: a restarted worker continues its predecessor's. */
  constructor(private readonly block: StatsBlock) {
    const was = block.read();
    this.recorded = was[Stat.Recorded]!;
    this.ringFull = was[Stat.RingFull]!;
    this.clientQueue = was[Stat.ClientQueue]!;
    this.invalid = was[Stat.Invalid]!;
    this.metadataDropped = was[Stat.MetadataDropped]!;
    this.rejectedClients = was[Stat.RejectedClients]!;
    this.framesSent = was[Stat.FramesSent]!;
    this.bytesSent = was[Stat.BytesSent]!;
    this.wakeups = was[Stat.Wakeups]!;
  }

  /**
   * Some figure changed: published now, or once when the current {@link hold} ends. Publishing
   * costs about a microsecond, less than scheduling it would (a `queueMicrotask` creates an
   * AsyncResource each time; it was 4 % of a wake-up at 1 k records/s).
   */
  changed(): void {
    if (this.holds > 0) this.dirty = true;
    else this.publish();
  }

  /** Defers publishing until {@link release}: a round's many changes are published once. */
  hold(): void {
    this.holds++;
  }

  release(): void {
    if (--this.holds > 0 || !this.dirty) return;
    this.dirty = false;
    this.publish();
  }

  /** Publishes every figure as one snapshot (nothing is allocated), also during a hold. */
  publish(): void {
    this.dirty = false;
    const v = this.values;
    v[Stat.Recorded] = this.recorded;
    v[Stat.RingFull] = this.ringFull;
    v[Stat.ClientQueue] = this.clientQueue;
    v[Stat.Invalid] = this.invalid;
    v[Stat.MetadataDropped] = this.metadataDropped;
    v[Stat.Clients] = this.clients;
    v[Stat.RejectedClients] = this.rejectedClients;
    v[Stat.FramesSent] = this.framesSent;
    v[Stat.BytesSent] = this.bytesSent;
    v[Stat.AttachedThreads] = this.attachedThreads;
    v[Stat.Keys] = this.keys;
    v[Stat.Wakeups] = this.wakeups;
    v[Stat.ClientsAtClose] = this.clientsAtClose;
    this.block.write(v);
  }
}
