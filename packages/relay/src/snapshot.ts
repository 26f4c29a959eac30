// What `relay.snapshot()` gives: the mirror as plain data, per exporter.
import type { MetricKind, SeriesMetadata } from 'metrics-exporter-tcp/client';
import type { ExporterStatus } from './reader.js';
import type { RelayMirror } from './mirror.js';

/** A series as `relay.snapshot()` reports it. */
export interface SeriesView {
  /** The exporter. */
  readonly scope: string;
  readonly kind: MetricKind;
  readonly name: string;
  /** Label names in ascending order. */
  readonly labels: Readonly<Record<string, string>>;
  /** Counters: the total since the relay connected (0n for other kinds). */
  readonly total: bigint;
  /** Gauges: the value, when `known` (a set arrived since the connection began). */
  readonly value: number;
  readonly known: boolean;
  /** When (ms since the epoch) its counts began: when it was made, or the exporter reconnected. */
  readonly startMs: number;
  /** Histograms: observations per bucket (not cumulative; the last is +Inf), sum and count. */
  readonly histogram: { readonly bounds: readonly number[]; readonly counts: readonly number[]; readonly sum: number; readonly count: number } | undefined;
}

/** One exporter: its link, what its stream cost, its series and metadata. */
export interface ExporterSnapshot extends ExporterStatus {
  readonly series: readonly SeriesView[];
  /** By metric name. */
  readonly metadata: ReadonlyMap<string, SeriesMetadata>;
}

/** What the relay holds at one moment. */
export interface RelaySnapshot {
  readonly exporters: readonly ExporterSnapshot[];
  /** Connections ended on a malformed stream, over every exporter. */
  readonly decodeErrors: number;
  /** Frames refused, over every exporter and reason. */
  readonly refused: number;
}

/** `mirror` as a {@link RelaySnapshot}. */
export function snapshotOf(mirror: RelayMirror): RelaySnapshot {
  const series = new Map<string, SeriesView[]>();
  for (const s of mirror.series()) {
    const list = series.get(s.exporter) ?? [];
    series.set(s.exporter, list);
    list.push({
      scope: s.exporter,
      kind: s.kind,
      name: s.name,
      labels: s.labels,
      total: s.kind !== 'counter' ? 0n : (s.big ?? BigInt(s.total)),
      value: s.value,
      known: s.kind !== 'gauge' || s.known,
      startMs: s.startMs,
      histogram: s.counts === undefined ? undefined : { bounds: s.bounds!, counts: [...s.counts], sum: s.sum, count: s.count },
    });
  }
  const exporters = mirror.exporters().map((e) => ({ ...e, series: series.get(e.exporter) ?? [], metadata: mirror.metadataByName(e.exporter) }));
  return {
    exporters,
    decodeErrors: exporters.reduce((n, e) => n + e.decodeErrors, 0),
    refused: exporters.reduce((n, e) => n + Object.values(e.refused).reduce((a, b) => a + b, 0), 0),
  };
}
