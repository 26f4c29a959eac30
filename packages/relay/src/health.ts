// The relay's own health, exposed beside what it relays: per exporter whether it is connected
// and how many events it sent, and overall decode errors, series held and series refused.
import type { ReaderSnapshot } from './reader.js';

/** One health metric: its samples, each with labels (the `exporter` label or none). */
export interface HealthMetric {
  readonly name: string;
  readonly type: 'counter' | 'gauge';
  readonly help: string;
  readonly samples: readonly { readonly labels: Record<string, string>; readonly value: number }[];
}

/** The health metrics' names, which exporters' metrics cannot take. */
export const HEALTH_NAMES = [
  'metrics_exporter_tcp_relay_up',
  'metrics_exporter_tcp_relay_events_total',
  'metrics_exporter_tcp_relay_decode_errors_total',
  'metrics_exporter_tcp_relay_series',
  'metrics_exporter_tcp_relay_series_refused_total',
] as const;

/** The relay's health metrics as of `snap`. */
export function healthMetrics(snap: ReaderSnapshot): HealthMetric[] {
  const [up, events, decodeErrors, series, refused] = HEALTH_NAMES;
  return [
    {
      name: up,
      type: 'gauge',
      help: 'Whether the relay is connected to the exporter (1) or not (0)',
      samples: snap.exporters.map((e) => ({ labels: { exporter: e.exporter }, value: e.state === 'connected' ? 1 : 0 })),
    },
    {
      name: events,
      type: 'counter',
      help: 'Events the relay read from the exporter',
      samples: snap.exporters.map((e) => ({ labels: { exporter: e.exporter }, value: e.events })),
    },
    {
      name: decodeErrors,
      type: 'counter',
      help: 'Exporters given up because their stream was malformed',
      samples: [{ labels: {}, value: snap.decodeErrors }],
    },
    {
      name: series,
      type: 'gauge',
      help: 'Series the relay holds',
      samples: [{ labels: {}, value: snap.exporters.reduce((n, e) => n + e.series.length, 0) }],
    },
    {
      name: refused,
      type: 'counter',
      help: 'Series and metric names refused beyond --max-series',
      samples: [{ labels: {}, value: snap.refused }],
    },
  ];
}
