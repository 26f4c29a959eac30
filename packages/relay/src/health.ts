// The relay's own health, exposed beside what it relays: per exporter whether it is connected,
// what it sent, and everything of it the relay refused, hid or dropped; the exporters' in-band
// loss reports. Every per-exporter series is there, at 0, from the moment the exporter is
// configured, so that `increase()` sees the first loss.
import { BUFFER_SIZE_METRIC, LOSS_REASONS, QUEUE_PEAK_METRIC, RING_PEAK_METRIC } from 'metrics-exporter-tcp/client';
import type { RelayMirror } from './mirror.js';
import { REFUSALS, lossReason, type LossReason } from './store.js';

/** One health metric: its samples, each with labels (`exporter`, a reason, or none). */
export interface HealthMetric {
  readonly name: string;
  readonly type: 'counter' | 'gauge';
  readonly help: string;
  readonly samples: readonly { readonly labels: Record<string, string>; readonly value: number }[];
}

/**
 * Why a series the relay holds is not on /metrics (each exporter's first of a name and labels
 * stays, in the order they were first seen):
 * - `name_clash`: its Prometheus name is taken by a series of another type, or by the relay's own;
 * - `duplicate`: once sanitized it is the same series as another (`http.requests` and `http_requests`);
 * - `label_clash`: two of its labels sanitize alike (`a.b` and `a_b`).
 */
export type HiddenReason = 'name_clash' | 'duplicate' | 'label_clash';
export const HIDDEN_REASONS: readonly HiddenReason[] = ['name_clash', 'duplicate', 'label_clash'];

/** Series hidden from /metrics, by exporter and reason. */
export type HiddenCounts = ReadonlyMap<string, Readonly<Record<HiddenReason, number>>>;

/** The relayed loss counter's name (the exporters' `metrics_exporter_tcp_dropped`, with `_total`). */
export const LOSS_NAME = 'metrics_exporter_tcp_dropped_total';

/** The names of the relay's own metrics, which exporters' metrics cannot take. */
export const HEALTH_NAMES = [
  'metrics_exporter_tcp_relay_up',
  'metrics_exporter_tcp_relay_connections_total',
  'metrics_exporter_tcp_relay_events_total',
  'metrics_exporter_tcp_relay_decode_errors_total',
  'metrics_exporter_tcp_relay_series',
  'metrics_exporter_tcp_relay_series_refused_total',
  'metrics_exporter_tcp_relay_series_hidden',
  'metrics_exporter_tcp_relay_invalid_values_total',
  LOSS_NAME,
  RING_PEAK_METRIC,
  QUEUE_PEAK_METRIC,
  BUFFER_SIZE_METRIC,
] as const;

/**
 * The relay's health metrics as of the mirror's last collection; `hidden` (what the last
 * /metrics left out) only for /metrics.
 */
export function healthMetrics(mirror: RelayMirror, hidden?: HiddenCounts): HealthMetric[] {
  const [up, connections, events, decodeErrors, series, refused, hiddenName, invalid, loss, ringPeak, queuePeak, bufferSize] = HEALTH_NAMES;
  const exporters = mirror.exporters();
  const each = (value: (e: (typeof exporters)[number]) => number) => exporters.map((e) => ({ labels: { exporter: e.exporter }, value: value(e) }));
  const lost = new Map<string, Partial<Record<LossReason, number>>>();
  let held = 0;
  for (const s of mirror.series()) {
    const reason = lossReason(s.kind, s.name, s.labels);
    if (reason === undefined) held++;
    else lost.set(s.exporter, { ...lost.get(s.exporter), [reason]: s.big === undefined ? s.total : Number(s.big) });
  }
  const metrics: HealthMetric[] = [
    { name: up, type: 'gauge', help: 'Whether the relay is connected to the exporter (1) or not (0)', samples: each((e) => (e.state === 'connected' ? 1 : 0)) },
    { name: connections, type: 'counter', help: 'Connections the relay made to the exporter (each one after the first is a reset of its counters)', samples: each((e) => e.connects) },
    { name: events, type: 'counter', help: 'Events the relay read from the exporter', samples: each((e) => e.events) },
    { name: decodeErrors, type: 'counter', help: 'Connections to the exporter that ended on a malformed stream (tried again after a back-off)', samples: each((e) => e.decodeErrors) },
    { name: series, type: 'gauge', help: 'Series the relay holds (what --max-series caps; loss counters are not counted)', samples: [{ labels: {}, value: held }] },
    {
      name: refused,
      type: 'counter',
      help: 'Frames of series and metadata the relay refused, by reason (max_series, max_bytes, exporter_series, exporter_bytes, too_large)',
      samples: exporters.flatMap((e) => REFUSALS.map((reason) => ({ labels: { exporter: e.exporter, reason }, value: e.refused[reason] }))),
    },
  ];
  if (hidden !== undefined) {
    metrics.push({
      name: hiddenName,
      type: 'gauge',
      help: 'Series the relay holds but left out of /metrics, by reason (name_clash, duplicate, label_clash)',
      samples: exporters.flatMap((e) => HIDDEN_REASONS.map((reason) => ({ labels: { exporter: e.exporter, reason }, value: hidden.get(e.exporter)?.[reason] ?? 0 }))),
    });
  }
  metrics.push(
    { name: invalid, type: 'counter', help: 'Histogram observations of the exporter dropped because they were NaN', samples: each((e) => e.invalidValues) },
    {
      name: loss,
      type: 'counter',
      help: 'Records the exporter reported this relay did not receive, by reason (ring_full, client_queue, invalid)',
      samples: exporters.flatMap((e) => LOSS_REASONS.map((reason) => ({ labels: { exporter: e.exporter, reason }, value: lost.get(e.exporter)?.[reason] ?? 0 }))),
    },
  );
  // Fill levels, of the exporters that reported them (self metrics on), each held at its largest for --peak-hold.
  const filled = exporters.filter((e) => e.fill !== undefined);
  const fill = (value: (f: NonNullable<(typeof exporters)[number]['fill']>) => number) => filled.map((e) => ({ labels: { exporter: e.exporter }, value: value(e.fill!) }));
  metrics.push(
    { name: ringPeak, type: 'gauge', help: "The most records any of the exporter's rings held at once over the last --peak-hold", samples: fill((f) => f.ringPeak) },
    { name: queuePeak, type: 'gauge', help: "The most frames the exporter's queue for this relay held at once over the last --peak-hold", samples: fill((f) => f.queuePeak) },
    { name: bufferSize, type: 'gauge', help: "The exporter's bufferSize: records per ring, frames per client queue", samples: fill((f) => f.bufferSize) },
  );
  return metrics;
}
