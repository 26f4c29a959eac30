// Pushes the relay's series to an OpenTelemetry Collector over OTLP/HTTP, with the
// OpenTelemetry SDK: counters and gauges are observed from the store at each export,
// histogram observations are recorded as they arrive.
import type { Writable } from 'node:stream';
import { exportLabels } from './naming.js';
import type { RelaySeries, SeriesStore } from './store.js';

export interface OtlpPusher {
  /** Call for every histogram observation applied to the store. */
  observe(series: RelaySeries, value: number): void;
  /** Exports what is pending, then stops. */
  close(): Promise<void>;
}

/** The SDK is imported here only, so recording apps never load it. */
export async function pushOtlp(
  store: SeriesStore,
  buckets: readonly number[],
  url: string,
  intervalMs: number,
  maxSeries: number,
  log: Writable,
): Promise<OtlpPusher> {
  const { diag, DiagLogLevel } = await import('@opentelemetry/api');
  const { MeterProvider, PeriodicExportingMetricReader } = await import('@opentelemetry/sdk-metrics');
  const { OTLPMetricExporter } = await import('@opentelemetry/exporter-metrics-otlp-http');
  // The SDK reports failed exports through its diagnostic logger: send them to the relay's log.
  const line = (m: string) => log.write(`relay: otlp: ${m}\n`);
  diag.setLogger({ error: line, warn: line, info: () => {}, debug: () => {}, verbose: () => {} }, DiagLogLevel.WARN);
  const reader = new PeriodicExportingMetricReader({
    exporter: new OTLPMetricExporter({ url }),
    exportIntervalMillis: intervalMs,
    exportTimeoutMillis: Math.min(intervalMs, 10_000),
    // The SDK keeps 2000 attribute sets per instrument unless told otherwise; maxSeries rules.
    cardinalityLimits: { default: maxSeries },
  });
  const provider = new MeterProvider({ readers: [reader] });
  const meter = provider.getMeter('metrics-exporter-tcp-relay');
  const attributes = (s: RelaySeries) => exportLabels(s.labels, s.scope, false);

  const observed = new Set<string>();
  const histograms = new Map<string, ReturnType<typeof meter.createHistogram>>();

  /** Creates an observable instrument per name the first time it is seen. */
  const ensureObservable = (s: RelaySeries): void => {
    const id = `${s.kind}:${s.name}`;
    if (observed.has(id) || s.kind === 'histogram') return;
    observed.add(id);
    const meta = store.describe(s.name, s.scope);
    const options = { description: meta?.description, unit: meta?.unit };
    const instrument = s.kind === 'counter' ? meter.createObservableCounter(s.name, options) : meter.createObservableGauge(s.name, options);
    instrument.addCallback((result) => {
      for (const x of store.seriesNamed(s.kind, s.name)) result.observe(x.kind === 'counter' ? Number(x.total) : x.value, attributes(x));
    });
  };
  const timer = setInterval(() => {
    for (const s of store.series.values()) ensureObservable(s);
  }, Math.min(intervalMs, 1000));
  timer.unref();

  return {
    observe(series, value) {
      let h = histograms.get(series.name);
      if (h === undefined) {
        const meta = store.describe(series.name, series.scope);
        h = meter.createHistogram(series.name, {
          description: meta?.description,
          unit: meta?.unit,
          advice: { explicitBucketBoundaries: [...buckets] },
        });
        histograms.set(series.name, h);
      }
      h.record(value, attributes(series));
    },
    async close() {
      clearInterval(timer);
      for (const s of store.series.values()) ensureObservable(s);
      await provider.forceFlush();
      await provider.shutdown();
    },
  };
}
