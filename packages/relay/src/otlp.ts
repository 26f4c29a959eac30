// Pushes the relay's series to an OpenTelemetry Collector over OTLP/HTTP with the OpenTelemetry
// SDK's periodic reader and OTLP exporter. The points come from the relay's own state (a
// MetricProducer reading a snapshot), cumulative since each series began: a reconnect starts
// counters and histograms again from 0 with a new start time, which is how OTLP says "reset".
import type { Writable } from 'node:stream';
import type { HrTime } from '@opentelemetry/api';
import type { DataPoint, Histogram, MetricData, MetricProducer } from '@opentelemetry/sdk-metrics';
import { healthMetrics } from './health.js';
import { exportLabels } from './naming.js';
import type { ReaderSnapshot } from './reader.js';

export interface OtlpPusher {
  /** Exports once more, then stops. */
  close(): Promise<void>;
}

const hrTime = (ms: number): HrTime => [Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6)];

/** The SDK is imported here only, so recording apps never load it. */
export async function pushOtlp(snapshot: () => Promise<ReaderSnapshot>, url: string, intervalMs: number, log: Writable): Promise<OtlpPusher> {
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
  const health = (snap: ReaderSnapshot, endTime: HrTime): MetricData[] =>
    healthMetrics(snap).map((h): MetricData => {
      const descriptor = { name: h.name.replace(/_total$/, ''), description: h.help, unit: '', valueType: ValueType.INT };
      const dataPoints = h.samples.map((x) => ({ startTime: startedAt, endTime, attributes: x.labels, value: x.value }));
      return h.type === 'counter'
        ? { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints }
        : { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.GAUGE, dataPoints };
    });

  /** The relay's health, then one metric per kind + name with a point per exporter + labels. */
  const metrics = (snap: ReaderSnapshot): MetricData[] => {
    const endTime = hrTime(Date.now());
    const byName = new Map<string, MetricData>();
    for (const e of snap.exporters) for (const s of e.series) {
      const id = `${s.kind}:${s.name}`;
      let m = byName.get(id);
      if (m === undefined) {
        const meta = e.metadata.get(s.name);
        const descriptor = {
          name: s.name,
          description: meta?.description ?? '',
          unit: meta?.unit ?? '',
          valueType: s.kind === 'counter' ? ValueType.INT : ValueType.DOUBLE,
        };
        const temporality = AggregationTemporality.CUMULATIVE;
        m =
          s.kind === 'counter'
            ? { descriptor, aggregationTemporality: temporality, dataPointType: DataPointType.SUM, isMonotonic: true, dataPoints: [] }
            : s.kind === 'gauge'
              ? { descriptor, aggregationTemporality: temporality, dataPointType: DataPointType.GAUGE, dataPoints: [] }
              : { descriptor, aggregationTemporality: temporality, dataPointType: DataPointType.HISTOGRAM, dataPoints: [] };
        byName.set(id, m);
      }
      const point = { startTime: hrTime(s.startMs), endTime, attributes: exportLabels(s.labels, e.exporter, false) };
      const h = s.histogram;
      if (h !== undefined) {
        const value: Histogram = { buckets: { boundaries: [...h.bounds], counts: [...h.counts] }, sum: h.sum, count: h.count };
        (m.dataPoints as DataPoint<Histogram>[]).push({ ...point, value });
      } else {
        (m.dataPoints as DataPoint<number>[]).push({ ...point, value: s.kind === 'counter' ? Number(s.total) : s.value });
      }
    }
    return [...health(snap, endTime), ...byName.values()];
  };

  const resource = defaultResource();
  const producer: MetricProducer = {
    async collect() {
      const snap = await snapshot();
      return { resourceMetrics: { resource, scopeMetrics: [{ scope: { name: 'metrics-exporter-tcp-relay' }, metrics: metrics(snap) }] }, errors: [] };
    },
  };
  const reader = new PeriodicExportingMetricReader({
    exporter: new OTLPMetricExporter({ url }),
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
