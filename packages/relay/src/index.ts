// metrics-exporter-tcp-relay as a library: what the command runs, for embedding it in a process
// of your own.
export { startRelay, type Relay, type RelayOptions } from './run.js';
export { Buckets, DEFAULT_BUCKETS, createStore, type RelaySeries, type SeriesStore } from './store.js';
export type { PrometheusEndpoint } from './prometheus.js';
