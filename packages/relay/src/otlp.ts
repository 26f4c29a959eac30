// Pushes the relay's series to an OpenTelemetry Collector over OTLP/HTTP with the OpenTelemetry
// SDK's periodic reader and OTLP exporter. The points come from the relay's own state (a
// MetricProducer reading the main thread's mirror), cumulative since each series began: a
// reconnect starts counters and histograms again from 0 with a new start time, which is how
// OTLP says "reset". Counters are doubles: a uint64 total does not fit OTLP's int64, and a
// double is exact up to 2^53 (what Prometheus stores anyway). Headers (e.g. a bearer token) and
// TLS (the collector's authority, a client certificate) go with every export.
import type { Writable } from 'node:stream';
import type { HrTime } from '@opentelemetry/api';
import type { DataPoint, ExponentialHistogram, Histogram, MetricData, MetricProducer } from '@opentelemetry/sdk-metrics';
import { healthMetrics } from './health.js';
import { readFlagFiles, type PemFileNames, type Pems } from './pem-files.js';
import type { RelayMirror } from './mirror.js';
import { lossReason } from './store.js';

/**
 * How histograms are exported: `explicit`, the classic buckets (`--buckets`, or the unit's);
 * `exponential`, OTLP's exponential histogram from the native buckets (scale = the native
 * schema), which keeps the shape whatever the range.
 */
export type OtlpHistogram = 'explicit' | 'exponential';
export const OTLP_HISTOGRAMS: readonly OtlpHistogram[] = ['explicit', 'exponential'];

/** Where and how to export: the collector's URL, headers, TLS (PEM text), and which histograms. */
export interface OtlpExport {
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly tls: Pems | undefined;
  readonly histogram: OtlpHistogram;
}

/** An HTTP header name (RFC 9110 token). */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Checks the collector's URL, headers and TLS files.
 * @throws TypeError for a URL that is not http(s), a header that is not `name` + value on one
 *   line, TLS options with an `http://` URL, or a TLS file that is wrong (naming it).
 */
export function otlpOptions(url: string, headers: Readonly<Record<string, string>> = {}, tls?: PemFileNames, histogram: OtlpHistogram = 'explicit'): OtlpExport {
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
  if (!OTLP_HISTOGRAMS.includes(histogram)) throw new TypeError(`--otlp-histogram must be ${OTLP_HISTOGRAMS.join(' or ')}, got ${String(histogram)}`);
  return { url, headers, tls: given ? readFlagFiles('--otlp-tls', tls) : undefined, histogram };
}

export interface OtlpPusher {
  /** Exports once more, then stops. */
  close(): Promise<void>;
}

const hrTime = (ms: number): HrTime => [Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6)];

/** Native bucket indexes this high are the infinite bucket (the finite ones end near 1024 · 2^schema). */
const INFINITE_FROM = 2 ** 30;

/**
 * A native histogram's buckets on one side of zero (flat index, count pairs in Prometheus's
 * indexing: bucket i holds (b^(i-1), b^i]) as OTLP's dense ones (bucket k holds (b^k, b^(k+1)]:
 * k = i − 1). OTLP has no bucket for an infinity: infinite observations go to the bucket above
 * the largest finite one, so that the buckets still add up to the count.
 */
function exponentialBuckets(flat: Float64Array, schema: number): { offset: number; bucketCounts: number[] } {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  let infinite = 0;
  for (let i = 0; i < flat.length; i += 2) {
    if (flat[i]! >= INFINITE_FROM) infinite += flat[i + 1]!;
    else {
      lo = Math.min(lo, flat[i]!);
      hi = Math.max(hi, flat[i]!);
    }
  }
  const infiniteAt = hi === Number.NEGATIVE_INFINITY ? Math.ceil(1024 * 2 ** schema) : hi + 1;
  if (infinite > 0) {
    lo = Math.min(lo, infiniteAt);
    hi = Math.max(hi, infiniteAt);
  }
  if (hi < lo) return { offset: 0, bucketCounts: [] };
  const bucketCounts = new Array<number>(hi - lo + 1).fill(0);
  for (let i = 0; i < flat.length; i += 2) bucketCounts[(flat[i]! >= INFINITE_FROM ? infiniteAt : flat[i]!) - lo]! += flat[i + 1]!;
  return { offset: lo - 1, bucketCounts };
}

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
              : to.histogram === 'exponential'
              ? { descriptor, aggregationTemporality: temporality, dataPointType: DataPointType.EXPONENTIAL_HISTOGRAM, dataPoints: [] }
              : { descriptor, aggregationTemporality: temporality, dataPointType: DataPointType.HISTOGRAM, dataPoints: [] };
        byName.set(id, m);
      }
      // The exporter's labels as sent, and the relay's `exporter` (a clashing one of the app's is `exported_exporter`).
      const attributes: Record<string, string> = {};
      for (const [k, v] of Object.entries(s.labels)) attributes[k === 'exporter' ? 'exported_exporter' : k] = v;
      attributes.exporter = s.exporter;
      const point = { startTime: hrTime(s.startMs), endTime, attributes };
      if (s.counts !== undefined && to.histogram === 'exponential') {
        const value: ExponentialHistogram = {
          count: s.count,
          sum: s.sum,
          scale: s.schema,
          zeroCount: s.zeroCount,
          positive: exponentialBuckets(s.positive, s.schema),
          negative: exponentialBuckets(s.negative, s.schema),
        };
        (m.dataPoints as DataPoint<ExponentialHistogram>[]).push({ ...point, value });
      } else if (s.counts !== undefined) {
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
