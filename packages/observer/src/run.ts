import type { Writable } from 'node:stream';
import { MetricReader, TcpClient, sampleStream, type ClientProtocol, type ClientTlsOptions } from 'metrics-exporter-tcp/client';
import { OBSERVER_LIMITS, ObserverModel, type Snapshot } from './model.js';

/** What {@link observe} takes; the command's flags map onto it. */
export interface ObserveOptions {
  /** `host:port`, `[v6]:port` or a unix socket path. */
  readonly address: string;
  /** The exporter's wire format; `'auto'` tells it from the first metric frame. */
  readonly protocol: ClientProtocol | 'auto';
  /** Print JSON snapshots instead of the live view. */
  readonly json: boolean;
  /** With `json`: one snapshot after `durationMs`, then exit. */
  readonly once: boolean;
  /** With `json`: how long to collect before a snapshot (and between snapshots). */
  readonly durationMs: number;
  /** Where JSON snapshots go. */
  readonly out: Writable;
  /** Where errors are reported. */
  readonly err: Writable;
  /** Ends a run that would otherwise go on (the JSON stream without `once`). */
  readonly signal?: AbortSignal;
  /** Connect over TLS (the exporter was built with `tls()`). */
  readonly tls?: ClientTlsOptions;
}

/** How messages on `err` start. */
const SAYS = 'metrics-exporter-tcp-observer:';
/** A frame larger than this is skipped as it streams (and counted as refused): the exporter never sends one. */
const MAX_FRAME_BYTES = 1024 * 1024;

/** Where the observer's connection is, in every JSON snapshot. */
export interface ConnectionStatus {
  state: 'connecting' | 'connected' | 'reconnecting' | 'stopped';
  /** Connections made after the first: each starts the totals afresh. */
  reconnects: number;
  /** Why the last connection ended or failed, when it did on an error. */
  error?: string;
}

/**
 * Runs the decoder and the model over a made-up stream for a while, so that the JIT has
 * compiled them before a busy exporter's stream arrives: cold, they read a tenth as fast, and
 * the exporter's queue for this client (`bufferSize` frames) could overflow meanwhile.
 */
function warmUp(protocol: ClientProtocol | 'auto'): void {
  const sample = sampleStream(protocol === 'auto' ? 'seed' : protocol);
  const reader = new MetricReader({ protocol });
  const model = new ObserverModel();
  for (let i = 0; i < 30; i++) {
    reader.push(sample);
    model.drain(reader);
  }
}

/**
 * A snapshot as one line of JSON. JSON escapes C0 controls but leaves DEL and C1 controls raw,
 * and a terminal may act on those: they are escaped too (`\u009b`), the data unchanged.
 */
export function snapshotJson(snapshot: object): string {
  return JSON.stringify(snapshot).replace(/[\u007f-\u009f]/g, (c) => `\\u00${c.charCodeAt(0).toString(16)}`);
}

/** Why a connection that ended with no error ended, as far as the observer can tell. */
function cleanEnd(connectedFor: number, frames: boolean): string {
  return connectedFor < 1000 && !frames
    ? 'the exporter closed the connection at once, sending nothing: it may be refusing clients (its maxClients are connected)'
    : 'the exporter closed the connection';
}

/** Runs `observe`; resolves to the process exit code. */
export async function observe(o: ObserveOptions): Promise<number> {
  warmUp(o.protocol);
  const model = new ObserverModel();
  const client = new TcpClient(o.address, {
    tls: o.tls,
    protocol: o.protocol,
    reconnect: !o.once,
    maxKeys: OBSERVER_LIMITS.maxSeries,
    maxKeyBytes: OBSERVER_LIMITS.maxBytes,
    maxFrameBytes: MAX_FRAME_BYTES,
    skipOversized: true,
  });
  const connection: ConnectionStatus = { state: 'connecting', reconnects: 0 };
  let connects = 0;
  let lastError = '';
  let connectedAt = 0;
  let eventsAtConnect = 0;
  // A connection's frames all arrive before the next one's 'connect' (consume() queues nothing):
  // the model restarts exactly at the boundary, so an exporter that replays its totals on
  // connect is not counted twice.
  client.on('connect', () => {
    if (connects++ > 0) model.reset();
    connectedAt = performance.now();
    eventsAtConnect = model.events;
    connection.state = 'connected';
    connection.reconnects = Math.max(0, connects - 1);
    delete connection.error;
  });
  client.on('disconnect', (err?: Error) => {
    const wasConnected = connection.state === 'connected';
    connection.state = 'reconnecting';
    lastError = err?.message ?? (wasConnected ? cleanEnd(performance.now() - connectedAt, model.events > eventsAtConnect) : '');
    if (lastError !== '') connection.error = lastError;
  });
  client.on('error', (err: Error) => (lastError = err.message));
  const snapshot = (): Snapshot & { connection: ConnectionStatus } => ({ ...model.snapshot(), connection: { ...connection } });
  const consumed = client.consume((reader) => model.drain(reader));
  // Whatever ends the stream is reported below; it must never be an unhandled rejection.
  let failure: Error | undefined;
  const ended = consumed.catch((err: Error) => {
    failure = err;
    lastError = err.message;
    connection.state = 'stopped'; // a malformed stream is not retried
  });

  if (o.once) {
    // Connect first: an exporter that is not there is an error, not an empty snapshot.
    const connected = await new Promise<boolean>((resolve) => {
      client.once('connect', () => resolve(true));
      void ended.then(() => resolve(false));
    });
    if (!connected) {
      o.err.write(`${SAYS} cannot read from ${o.address}: ${lastError || 'connection closed'}\n`);
      await client.close();
      return 1;
    }
    let timer: NodeJS.Timeout | undefined;
    const full = await Promise.race([new Promise<true>((r) => (timer = setTimeout(r, o.durationMs, true))), ended.then(() => false)]);
    clearTimeout(timer);
    const last = snapshot();
    await client.close();
    await ended;
    // A connection that ended before --duration is no snapshot of the exporter: refused (its
    // client slots full), or cut off.
    const why = failure?.message ?? (full ? undefined : `${lastError}, before --duration (${o.durationMs} ms)`);
    if (why !== undefined) {
      o.err.write(`${SAYS} ${o.address}: ${why}\n`);
      return 1;
    }
    o.out.write(`${snapshotJson(last)}\n`);
    return 0;
  }

  if (o.json) {
    const timer = setInterval(() => o.out.write(`${snapshotJson(snapshot())}\n`), o.durationMs);
    o.signal?.addEventListener('abort', () => void client.close(), { once: true });
    await ended;
    clearInterval(timer);
    if (failure !== undefined) o.err.write(`${SAYS} ${o.address}: ${failure.message}\n`);
    return failure === undefined ? 0 : 1;
  }

  const { runTui } = await import('./tui.js');
  let last = model.events;
  let rate = 0;
  const meter = setInterval(() => {
    rate = model.events - last;
    last = model.events;
  }, 1000);
  const ui = runTui({
    model,
    status: () => ({
      address: o.address,
      state:
        (connection.state === 'connected' || !lastError ? connection.state : `${connection.state} (${lastError})`) +
        (connection.reconnects > 0 ? `, ${connection.reconnects} reconnect${connection.reconnects > 1 ? 's' : ''} (totals since the last)` : ''),
      eventsPerSec: rate,
      lost: model.lost,
      refused: model.refused,
      buffer: model.buffer,
    }),
  });
  await ui.waitUntilExit();
  clearInterval(meter);
  await client.close();
  await ended;
  return 0;
}
