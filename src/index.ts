// The public API. Everything not exported here is internal.
export { TcpBuilder, type Protocol } from './app/builder.js';
export { ExporterError, type ExporterErrorCode } from './errors.js';
// A recorder comes from TcpBuilder.build(): the class is exported as a type only (no constructor to call).
export type { TcpRecorder, ExporterStats } from './app/recorder.js';
export type { Recording, GaugeValue, HistogramOptions } from './app/recording.js';
export type { RuntimeMetrics, RuntimeMetricsOptions } from './app/runtime-metrics.js';
export { attach, type Connector } from './app/attach.js';
export type { Counter, Gauge, Histogram } from './app/handles.js';
export type { Key, Labels } from './app/key.js';
export type { ListenAddress, BoundAddress } from './shared/address.js';
export type { TlsOptions, Pem } from './app/tls-options.js';
export { UNITS, type Unit } from './app/units.js';
export { counter, gauge, histogram, describeCounter, describeGauge, describeHistogram } from './app/global.js';
