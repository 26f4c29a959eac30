// `metrics-exporter-tcp/testing`: assert an app's metrics in unit tests. Kept out of the main
// entry point: an app that records never loads it.
export { captureMetrics, type CaptureOptions, type MetricsCapture, type CapturedValue, type CaptureRecorder, type HistogramTotals } from './capture.js';
export type { CapturedMetric } from '../shared/messages.js';
export { CaptureError, type CaptureErrorCode } from '../errors.js';
