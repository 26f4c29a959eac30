// The relay: reads any number of exporters and serves their metrics to
// Prometheus (scrape) and/or an OpenTelemetry Collector (OTLP push).
import type { Writable } from 'node:stream';
import { TcpClient, parseListenAddress, type ClientProtocol } from 'metrics-exporter-tcp/client';
import { pushOtlp, type OtlpPusher } from './otlp.js';
import { servePrometheus, type PrometheusEndpoint } from './prometheus.js';
import { createStore, type SeriesStore } from './store.js';

/** What {@link startRelay} takes; the command's flags map onto it one to one. */
export interface RelayOptions {
  /** Exporter addresses (`host:port`, `[v6]:port` or a socket path); each becomes the `exporter` label. */
  readonly connect: readonly string[];
  /** The exporters' wire format; `'auto'` tells it from each connection's first metric frame. */
  readonly protocol: ClientProtocol | 'auto';
  /** Where to serve GET /metrics, e.g. `127.0.0.1:9464`. */
  readonly prometheus?: string;
  /** OTLP/HTTP metrics endpoint, e.g. `http://127.0.0.1:4318/v1/metrics`. */
  readonly otlp?: string;
  /** How often to push to `otlp`, in ms. */
  readonly otlpIntervalMs: number;
  /** Histogram bucket upper bounds, ascending. */
  readonly buckets: readonly number[];
  /** Most series kept; beyond it new series are refused, counted and logged once. */
  readonly maxSeries: number;
  /** Where the relay says what happens: connections, given-up exporters, refused series, export failures. */
  readonly log: Writable;
}

/** A running relay. */
export interface Relay {
  /** Every exporter's series (the scope of each is the exporter's address). */
  readonly store: SeriesStore;
  /** The /metrics endpoint, when `prometheus` was given. */
  readonly prometheus?: PrometheusEndpoint;
  /** Connection state per exporter. */
  readonly state: Map<string, 'connecting' | 'connected' | 'reconnecting' | 'failed'>;
  /** Disconnects, pushes what OTLP has pending, and stops serving /metrics. */
  close(): Promise<void>;
}

/**
 * Connects to every exporter (reconnecting with back-off) and serves what they send to
 * Prometheus and/or OTLP. An exporter whose stream is malformed is given up for good and logged
 * with the error's code; the others keep flowing.
 * @throws TypeError without exporters, or without `prometheus` and `otlp`; rejects when the
 *   /metrics address cannot be bound.
 */
export async function startRelay(o: RelayOptions): Promise<Relay> {
  if (o.connect.length === 0) throw new TypeError('startRelay needs at least one exporter address in connect');
  if (o.prometheus === undefined && o.otlp === undefined) throw new TypeError('startRelay needs prometheus and/or otlp');
  const store = createStore(o.buckets, o.maxSeries, () =>
    o.log.write(`relay: more than ${o.maxSeries} series; new series are refused\n`),
  );
  const prometheus = o.prometheus === undefined ? undefined : await servePrometheus(store, parseListenAddress(o.prometheus), o.log);
  const otlp: OtlpPusher | undefined =
    o.otlp === undefined ? undefined : await pushOtlp(store, o.buckets, o.otlp, o.otlpIntervalMs, o.maxSeries, o.log);
  const state: Relay['state'] = new Map();
  const clients = o.connect.map((address) => {
    const client = new TcpClient(address, { protocol: o.protocol, reconnect: true });
    state.set(address, 'connecting');
    client.on('connect', () => {
      // Totals count from this connection on: a reconnect is a counter reset.
      store.resetScope(address);
      state.set(address, 'connected');
      o.log.write(`relay: connected to ${address}\n`);
    });
    client.on('disconnect', () => state.set(address, 'reconnecting'));
    const done = (async () => {
      for await (const ev of client) {
        const s = store.apply(ev, address);
        if (s !== undefined && otlp !== undefined && ev.kind === 'metric' && ev.op.type === 'histogramRecord') otlp.observe(s, ev.op.value);
      }
    })().catch((err: Error & { code?: string }) => {
      // A garbage stream ends this exporter only; the others keep flowing. Its last values
      // are not published forever.
      state.set(address, 'failed');
      store.dropScope(address);
      o.log.write(`relay: ${address} disconnected for good (${err.code ?? err.name}): ${err.message}\n`);
    });
    return { client, done };
  });
  return {
    store,
    prometheus,
    state,
    async close() {
      await Promise.all(clients.map((c) => c.client.close()));
      await Promise.all(clients.map((c) => c.done));
      await otlp?.close();
      await prometheus?.close();
    },
  };
}
