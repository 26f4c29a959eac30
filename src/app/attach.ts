import { BroadcastChannel } from 'node:worker_threads';
import { Ctl, RingSlot, createRing, ringViews } from '../shared/layout.js';
import type { ChannelMessage, ControlMessage } from '../shared/messages.js';
import { Recording } from './recording.js';
import { threadId } from '../shared/thread-id.js';
import { Registry } from './registry.js';
import { RingWriter } from './ring-writer.js';

/**
 * What `recorder.connector()` returns: plain data (SharedArrayBuffers, strings and numbers),
 * so it can go into `workerData` or a `postMessage` without a transfer list.
 */
export interface Connector {
  readonly kind: 'metrics-exporter-tcp/connector';
  readonly version: 1;
  /** The exporter's control block (clients flag, doorbell). */
  readonly ctl: SharedArrayBuffer;
  /** Name of the BroadcastChannel the exporter's worker listens on. */
  readonly channel: string;
  readonly bufferSize: number;
  readonly maxKeys: number;
  /** Whether the exporter keeps totals (`replayOnConnect`, or the Prometheus endpoint). */
  readonly replay: boolean;
  /** Whether the exporter serves the Prometheus endpoint (histograms always go to the ring). */
  readonly endpoint: boolean;
  /** Whether the exporter is a capture's (`captureMetrics()`): gauges always go to the ring too. */
  readonly capture?: boolean;
}

function isConnector(x: unknown): x is Connector {
  const c = x as Connector;
  return (
    typeof c === 'object' &&
    c !== null &&
    c.kind === 'metrics-exporter-tcp/connector' &&
    c.version === 1 &&
    c.ctl instanceof SharedArrayBuffer &&
    typeof c.channel === 'string' &&
    Number.isInteger(c.bufferSize) &&
    Number.isInteger(c.maxKeys) &&
    typeof c.replay === 'boolean' &&
    typeof c.endpoint === 'boolean' &&
    (c.capture === undefined || typeof c.capture === 'boolean')
  );
}

// Rings attached from this thread. When the thread exits, whatever is written is published and
// each ring is marked closed, so the worker drains it and forgets it.
const attachedHere = new Map<RingWriter, BroadcastChannel>();
let exitHookInstalled = false;

function closeOnExit(writer: RingWriter, channel: BroadcastChannel): void {
  attachedHere.set(writer, channel);
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', closeAttachedRings);
}

/**
 * @internal The thread is ending: publishes and closes the rings attached from it. (Also run by
 * the recorder's exit flush, before it waits for the worker, when it is this thread's.)
 */
export function closeAttachedRings(): void {
  for (const [w, channel] of attachedHere) {
    w.close();
    channel.close();
  }
  attachedHere.clear();
}

/**
 * Attaches the calling thread (a worker_threads Worker, a piscina task thread, or any thread)
 * to an exporter: returns a recorder with the recording API (register calls, key-based calls,
 * handles) that writes into a ring of this thread's own. `stats()` and `close()` stay with the
 * main recorder. Call it once per thread and keep the result.
 * @throws TypeError if `connector` is not what `recorder.connector()` returned.
 */
export function attach(connector: unknown): Recording {
  if (!isConnector(connector)) {
    throw new TypeError('attach() takes the value returned by recorder.connector()');
  }
  // The ring and its control messages are announced on the exporter's channel, which the
  // worker and the exporter's host both hear: the host hands them to a worker started after a
  // crash, so nothing here has to answer it (a thread blocked in Atomics.wait could not).
  const desc = createRing(connector.bufferSize);
  ringViews(desc.sab).header[RingSlot.Tid] = threadId();
  const writer = new RingWriter(desc, connector.ctl);
  const registry = new Registry(writer, connector.maxKeys, connector.replay, connector.endpoint, false, connector.capture === true);
  // Distinct among the rings of this process (a collision is as likely as with node:crypto's, which would cost every app 2 MB).
  const ring = Math.floor(Math.random() * 2 ** 47);
  const channel = new BroadcastChannel(connector.channel);
  channel.unref(); // only posted to: it never keeps this thread alive
  writer.rebind({
    postMessage(msg: ControlMessage): void {
      msg.ring = ring;
      channel.postMessage(msg);
    },
  });
  channel.postMessage({ t: 'attach', ring, desc } satisfies ChannelMessage);
  // Counted after it is posted: a worker that has heard of fewer rings knows one is on its way.
  Atomics.add(new Int32Array(connector.ctl), Ctl.Attaches, 1);
  closeOnExit(writer, channel);
  return new Recording(writer, registry);
}
