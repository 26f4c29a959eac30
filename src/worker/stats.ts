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
  private scheduled = false;
  private readonly values = new Float64Array(STAT_COUNT);
  private readonly publishNow = (): void => {
    this.scheduled = false;
    this.publish();
  };

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

  /** Publishes once, at the end of the current job, however many counters changed. */
  changed(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(this.publishNow);
  }

  /** Publishes every figure as one snapshot (nothing is allocated). */
  publish(): void {
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
    this.block.write(v);
  }
}
