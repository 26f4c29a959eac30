// metrics-exporter-tcp-relay as a library: what the command runs, for embedding it in a process
// of your own.
export { startRelay, type Relay, type RelayOptions, type RelayTlsFiles } from './run.js';
export { Buckets, DEFAULT_BUCKETS, MAX_FRAME_BYTES, MAX_NATIVE_BUCKETS, REFUSALS, type Refusal } from './store.js';
export { HIDDEN_REASONS, type HiddenReason } from './health.js';
export type { ExporterSnapshot, RelaySnapshot, SeriesView } from './snapshot.js';
export type { ExporterStatus } from './reader.js';
export type { LinkState } from './exporter-link.js';
export type { PrometheusEndpoint } from './prometheus.js';
