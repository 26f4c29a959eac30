import { BroadcastChannel, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import type { ChannelMessage, ControlMessage, RingRecord } from '../shared/messages.js';
import type { RingDescriptor } from '../shared/layout.js';

/** What the host keeps of one ring. */
interface Known {
  readonly desc: RingDescriptor;
  /** Every key announcement: a key's id stays valid for the ring's life. */
  readonly keys: ControlMessage[];
  /** The last metadata of each name (a later one replaces it, as in the worker). */
  readonly meta: Map<string, ControlMessage>;
  /** Messages of the ring's sequence seen so far. */
  count: number;
}

/**
 * The rings other threads attach, as the exporter's host hears them: it listens on the channel
 * that threads announce their rings and control messages on, next to the worker, and keeps each
 * ring with its key announcements and metadata. A worker started after a crash is handed all of
 * it ({@link snapshot}), so it never depends on the threads to find their rings: a thread
 * blocked in `Atomics.wait` between tasks (piscina's, by default) could not answer, and one that
 * re-announced its keys could only stamp them at its current position, after records already in
 * the ring. A ring is forgotten when the worker has drained it and says so ({@link release}).
 *
 * Costs the app's thread one message per ring and per key or metadata registration in another
 * thread, never one per record.
 */
export class RingDirectory {
  private readonly known = new Map<number, Known>();
  private readonly channel: BroadcastChannel;
  /** Whether this runtime takes a channel's messages synchronously (see {@link catchUp}). */
  private readonly syncReceive: boolean;

  constructor(name: string) {
    this.channel = new BroadcastChannel(name);
    this.syncReceive = receivesSynchronously(this.channel, name);
    this.channel.onmessage = (e) => this.take((e as MessageEvent).data as ChannelMessage);
    this.channel.unref(); // after onmessage, which refs it: it never keeps the process alive
  }

  /** Every ring known now, for a worker that has started listening on the channel. */
  snapshot(): RingRecord[] {
    this.catchUp();
    return [...this.known].map(([ring, k]) => ({ ring, desc: k.desc, messages: [...k.keys, ...k.meta.values()], count: k.count }));
  }

  /** The worker has drained a ring whose thread is gone. */
  release(ring: number): void {
    this.catchUp(); // its announcement, if the event loop has not delivered it yet
    this.known.delete(ring);
  }

  /** Stops listening, after taking what was posted and not delivered yet (for {@link rings}). */
  close(): void {
    this.catchUp();
    this.channel.close();
  }

  /** The rings known now (also after {@link close}). */
  rings(): RingDescriptor[] {
    return [...this.known.values()].map((k) => k.desc);
  }

  /**
   * Takes, synchronously, what was posted on the channel and not delivered yet. Posting queues a
   * message for every listener at once: everything a thread posted before the worker began to
   * listen is here by the time the worker asks. Where the runtime cannot (Bun, Deno), what is
   * posted reaches the host on its event loop only: a thread that attaches just before a worker
   * restart may then be missed by the new worker.
   */
  private catchUp(): void {
    if (!this.syncReceive) return;
    const port = this.channel as unknown as MessagePort;
    for (let m = receiveMessageOnPort(port); m !== undefined; m = receiveMessageOnPort(port)) this.take(m.message as ChannelMessage);
  }

  private take(m: ChannelMessage): void {
    if (m?.t === 'attach') {
      if (!this.known.has(m.ring)) this.known.set(m.ring, { desc: m.desc, keys: [], meta: new Map(), count: 0 });
      return;
    }
    if ((m?.t !== 'key' && m?.t !== 'meta') || m.ring === undefined) return;
    const known = this.known.get(m.ring);
    if (known === undefined) return;
    if (m.t === 'key') known.keys.push(m);
    else known.meta.set(m.name, m);
    known.count = (m.seq + 1) | 0;
  }
}

/**
 * Whether messages posted on the channel's name can be taken from it synchronously, with
 * `receiveMessageOnPort`: in Node (its BroadcastChannel is built on a MessagePort); not in Bun
 * (the call returns nothing) nor in Deno (it takes MessagePorts only, and throws). Found by
 * trying, on a channel whose name nobody else uses yet: a probe posted on a second channel of
 * that name either comes back at once or is ignored when it is delivered later.
 */
function receivesSynchronously(channel: BroadcastChannel, name: string): boolean {
  const probe = new BroadcastChannel(name);
  try {
    probe.postMessage({ t: 'probe' });
    return receiveMessageOnPort(channel as unknown as MessagePort) !== undefined;
  } catch {
    return false;
  } finally {
    probe.close();
  }
}
