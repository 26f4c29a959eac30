import { STAT_COUNT, Stat } from '../shared/layout.js';

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
  private scheduled = false;

  /** Starts from the figures already in `stat`: a restarted worker continues its predecessor's. */
  constructor(private readonly stat: BigInt64Array) {
    const at = (i: Stat): number => Number(Atomics.load(stat, i));
    this.recorded = at(Stat.Recorded);
    this.ringFull = at(Stat.RingFull);
    this.clientQueue = at(Stat.ClientQueue);
    this.invalid = at(Stat.Invalid);
    this.metadataDropped = at(Stat.MetadataDropped);
    this.rejectedClients = at(Stat.RejectedClients);
    this.framesSent = at(Stat.FramesSent);
    this.bytesSent = at(Stat.BytesSent);
  }

  /** Publishes once, at the end of the current job, however many counters changed. */
  changed(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.publish();
    });
  }

  /** Stores every figure with Atomics so that the app never reads a torn value. */
  publish(): void {
    const values: Record<Stat, number> = {
      [Stat.Recorded]: this.recorded,
      [Stat.RingFull]: this.ringFull,
      [Stat.ClientQueue]: this.clientQueue,
      [Stat.Invalid]: this.invalid,
      [Stat.MetadataDropped]: this.metadataDropped,
      [Stat.Clients]: this.clients,
      [Stat.RejectedClients]: this.rejectedClients,
      [Stat.FramesSent]: this.framesSent,
      [Stat.BytesSent]: this.bytesSent,
      [Stat.AttachedThreads]: this.attachedThreads,
      [Stat.Keys]: this.keys,
    };
    for (let i = 0; i < STAT_COUNT; i++) Atomics.store(this.stat, i, BigInt(values[i as Stat]));
  }
}
