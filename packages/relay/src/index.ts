// metrics-exporter-tcp-relay as a library: what the command runs, for embedding it in a process
// of your own.
export { startRelay, type Relay, type RelayOptions } from './run.js';
export { Buckets, DEFAULT_BUCKETS, type SeriesView } from './store.js';
export type { ExporterSnapshot, ReaderSnapshot as RelaySnapshot } from './reader.js';
export type { LinkState } from './exporter-link.js';
export type { PrometheusEndpoint } from './prometheus.js';
