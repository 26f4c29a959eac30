// Pushes the relay's series to an OpenTelemetry Collector over OTLP/HTTP with the OpenTelemetry
// SDK's periodic reader and OTLP exporter. The points come from the relay's own state (a
// MetricProducer reading the main thread's mirror), cumulative since each series began: a
// reconnect starts counters and histograms again from 0 with a new start time, which is how
// OTLP says "reset". Counters are doubles: a uint64 total does not fit OTLP's int64, and a
// double is exact up to 2^53 (what Prometheus stores anyway). Headers (e.g. a bearer token) and
// TLS (the collector's authority, a client certificate) go with every export.
import type { Writable } from 'node:stream';
import type { HrTime } from '@opentelemetry/api';
import type { DataPoint, Histogram, MetricData, MetricProducer } from '@opentelemetry/sdk-metrics';
import { healthMetrics } from './health.js';
import { readFlagFiles, type PemFileNames, type Pems } from './pem-files.js';
import type { RelayMirror } from './mirror.js';
import { lossReason } from './store.js';

/** Where and how to export: the collector's URL, headers, and TLS (PEM text). */
export interface OtlpExport {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly tls: Pems | undefined;
}

/** An HTTP header name (RFC 9110 token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Checks the collector's URL, headers and TLS files.
 * @throws TypeError for a URL that is not http(s), a header that is not `name` + value on one
 *   line, TLS options with an `http://` URL, or a TLS file that is wrong (naming it).
 */
export function otlpOptions(url: string, headers: Readonly<Record<string, string>> = {}, tls?: PemFileNames): OtlpExport {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(`--otlp ${url} is not a URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new TypeError(`--otlp ${url}: only http:// and https:// are spoken`);
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name)) throw new TypeError(`--otlp-header ${name}: not an HTTP header name`);
    if (/[\r\n\0]/.test(value)) throw new TypeError(`--otlp-header ${name}: its value has a line break or NUL`);
  }
  const given = tls !== undefined && (tls.ca ?? tls.cert ?? tls.key) !== undefined;
  if (given && u.protocol !== 'https:') throw new TypeError(`--otlp-tls-* need an https:// collector URL, got ${url}`);
  return { url, headers, tls: given ? readFlagFiles('--otlp-tls', tls) : undefined };
}

export interface OtlpPusher {
  /** Exports once more, then stops. */
  close(): Promise<void>;
}

const hrTime = (ms: number): HrTime => [Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6)];

/**
 * Starts pushing. `collect` brings `mirror` up to date. The SDK is imported here only, so
 * recording apps never load it.
 */
export async function pushOtlp(collect: () => Promise<void>, mirror: RelayMirror, to: OtlpExport, intervalMs: number, log: Writable): Promise<OtlpPusher> {
  const { diag, DiagLogLevel, ValueType } = await import('@opentelemetry/api');
  const { AggregationTemporality, DataPointType, MeterProvider, PeriodicExportingMetricReader } = await import('@opentelemetry/sdk-metrics');
  const { OTLPMetricExporter } = await import('@opentelemetry/exporter-metrics-otlp-http');
  const { defaultResource } = await import('@opentelemetry/resources');
  // The SDK reports failed exports through its diagnostic logger: send them to the relay's log.
  const line = (m: string) => log.write(`relay: otlp: ${m}\n`);
  diag.setLogger({ error: line, warn: line, info: () => {}, debug: () => {}, verbose: () => {} }, DiagLogLevel.WARN);

  const startedAt = hrTime(Date.now());
  /**
   * The relay's health: counters as cumulative sums since the relay started, named without
   * `_total` as OTLP names are (a Prometheus backend adds it back).
   */
  const health = (endTime: HrTime): MetricData[] =>
    healthMetrics(mirror).map((h): MetricData => {
      const descriptor = { name: h.name.replace(/_total$/, ''), description: h.help, unit: '', valueType: ValueType.INT };
      const dataPoints = h.samples.map((x) => ({ startTime: startedAt, endTime, attributes: x.labels, value: x.value }));
      return h.type === 'counter'
        ? { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints }
        : { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.GAUGE, dataPoints };
    });

  /**
   * The relay's health (the exporters' loss reports included), then one metric per kind + name
   * with a point per exporter + labels; gauges whose base is unknown are left out until set.
   */
  const metrics = (): MetricData[] => {
    const endTime = hrTime(Date.now());
    const byName = new Map<string, MetricData>();
    for (const s of mirror.series()) {
      if (lossReason(s.kind, s.name, s.labels) !== undefined || (s.kind === 'gauge' && !s.known)) continue;
      const id = `${s.kind}:${s.name}`;
      let m = byName.get(id);
      if (m === undefined) {
        const meta = mirror.metadataOf(s.exporter, s.name);
        const descriptor = { name: s.name, description: meta?.description ?? '', unit: meta?.unit ?? '', valueType: ValueType.DOUBLE };
        const temporality = AggregationTemporality.CUMULATIVE;
        m =
          s.kind === 'counter'
            ? { descriptor, aggregationTemporality: temporality, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints: [] }
            : s.kind === 'gauge'
              ? { descriptor, aggregationTemporality: temporality, dataPointType: DataPointType.GAUGE, dataPoints: [] }
              : { descriptor, aggregationTemporality: temporality, dataPointType: DataPointType.HISTOGRAM, dataPoints: [] };
        byName.set(id, m);
      }
      // The exporter's labels as sent, and the relay's `exporter` (a clashing one of the app's is `exported_exporter`).
      const attributes: Record<string, string> = {};
      for (const [k, v] of Object.entries(s.labels)) attributes[k === 'exporter' ? 'exported_exporter' : k] = v;
      attributes.exporter = s.exporter;
      const point = { startTime: hrTime(s.startMs), endTime, attributes };
      if (s.counts !== undefined) {
        const value: Histogram = { buckets: { boundaries: [...s.bounds!], counts: [...s.counts] }, sum: s.sum, count: s.count };
        (m.dataPoints as DataPoint<Histogram>[]).push({ ...point, value });
      } else {
        (m.dataPoints as DataPoint<number>[]).push({ ...point, value: s.kind === 'counter' ? (s.big === undefined ? s.total : Number(s.big)) : s.value });
      }
    }
    return [...health(endTime), ...byName.values()];
  };

  const resource = defaultResource();
  const producer: MetricProducer = {
    async collect() {
      await collect();
      return { resourceMetrics: { resource, scopeMetrics: [{ scope: { name: 'metrics-exporter-tcp-relay' }, metrics: metrics() }] }, errors: [] };
    },
  };
  const reader = new PeriodicExportingMetricReader({
    exporter: new OTLPMetricExporter({ url: to.url, headers: { ...to.headers }, ...(to.tls === undefined ? {} : { httpAgentOptions: { ...to.tls } }) }),
    exportIntervalMillis: intervalMs,
    exportTimeoutMillis: Math.min(intervalMs, 10_000),
    metricProducers: [producer],
  });
  const provider = new MeterProvider({ resource, readers: [reader] });
  return {
    async close() {
      await provider.forceFlush();
      await provider.shutdown();
    },
  };
}
