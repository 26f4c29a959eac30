import type { Counters } from '../stats.js';
import type { NameInfo, ValueSeries } from './exposition.js';

const WORD = 2 ** 32;

/** What the exporter's own figures are, for HELP. */
const HELP: Readonly<Record<string, string>> = {
  metrics_exporter_tcp_recorded: 'Records accepted into a ring.',
  metrics_exporter_tcp_dropped: 'Records a client did not get, by reason (once per client for client_queue); invalid values and refused keys are invalid.',
  metrics_exporter_tcp_metadata_dropped: 'Metadata frames a client did not get.',
  metrics_exporter_tcp_clients: 'TCP clients connected.',
  metrics_exporter_tcp_rejected_clients: 'Connections refused: past maxClients, or a TLS handshake that failed.',
  metrics_exporter_tcp_frames_sent: 'Frames written whole to TCP clients.',
  metrics_exporter_tcp_bytes_sent: 'Bytes written to TCP clients.',
  metrics_exporter_tcp_worker_restarts: 'Times the transport worker died and was restarted.',
  metrics_exporter_tcp_attached_threads: 'Rings of other threads attached.',
  metrics_exporter_tcp_keys: 'Distinct keys the worker holds, over all threads.',
  metrics_exporter_tcp_series_hidden: 'Series left out of /metrics: their family name is taken by another type, or two of their labels sanitize alike.',
};

/** HELP of the exporter's own figures, as the endpoint's exposition takes it. */
export function selfInfo(name: string): NameInfo | undefined {
  const description = HELP[name];
  return description === undefined ? undefined : { kind: 'counter', unit: undefined, description, buckets: undefined };
}

function series(name: string, kind: 'counter' | 'gauge', v: number, labels: Record<string, string> = {}): ValueSeries {
  const hi = kind === 'counter' ? Math.floor(v / WORD) : 0;
  return { name, labels, kind, lo: v - hi * WORD, hi };
}

/** The exporter's own figures as series of the endpoint (`metrics_exporter_tcp_*`). */
export function selfSeries(c: Counters, restarts: number, hidden: number): ValueSeries[] {
  return [
    series('metrics_exporter_tcp_recorded', 'counter', c.recorded),
    series('metrics_exporter_tcp_dropped', 'counter', c.ringFull, { reason: 'ring_full' }),
    series('metrics_exporter_tcp_dropped', 'counter', c.clientQueue, { reason: 'client_queue' }),
    series('metrics_exporter_tcp_dropped', 'counter', c.invalid, { reason: 'invalid' }),
    series('metrics_exporter_tcp_metadata_dropped', 'counter', c.metadataDropped),
    series('metrics_exporter_tcp_clients', 'gauge', c.clients),
    series('metrics_exporter_tcp_rejected_clients', 'counter', c.rejectedClients),
    series('metrics_exporter_tcp_frames_sent', 'counter', c.framesSent),
    series('metrics_exporter_tcp_bytes_sent', 'counter', c.bytesSent),
    series('metrics_exporter_tcp_worker_restarts', 'counter', restarts),
    series('metrics_exporter_tcp_attached_threads', 'gauge', c.attachedThreads),
    series('metrics_exporter_tcp_keys', 'gauge', c.keys),
    series('metrics_exporter_tcp_series_hidden', 'gauge', hidden),
  ];
}
