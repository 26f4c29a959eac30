// The `metrics-exporter-tcp/otel` entry point: an @opentelemetry/api MeterProvider over the
// exporter. It uses the API's types only, so it loads without @opentelemetry/api installed.
export { TcpMeterProvider, type TcpMeterProviderOptions } from './provider.js';
