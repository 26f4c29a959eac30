// Protocol names: the one place that knows which wire formats exist, for the exporter and the client.

/**
 * Wire formats: `'seed'`, the Rust crate's 2021 `event.proto` (the default), or
 * `'observer-0.11'`, today's Rust metrics-exporter-tcp / metrics-observer format.
 */
export type Protocol = 'seed' | 'observer-0.11';

/** The wire formats, in the order messages list them. */
export const PROTOCOLS: readonly Protocol[] = ['seed', 'observer-0.11'];

/**
 * `value` as a protocol name; with `auto`, `'auto'` (tell the format from the stream) is one too.
 * @throws TypeError for anything else, naming the names allowed.
 */
export function checkProtocol(value: unknown, auto: true): Protocol | 'auto';
export function checkProtocol(value: unknown, auto: false): Protocol;
export function checkProtocol(value: unknown, auto: boolean): Protocol | 'auto' {
  const allowed: readonly unknown[] = auto ? ['auto', ...PROTOCOLS] : PROTOCOLS;
  if (!allowed.includes(value)) {
    throw new TypeError(`protocol must be ${allowed.map((p) => `'${String(p)}'`).join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as Protocol | 'auto';
}

/**
 * The counter every client receives about the records it did not get (unit `count`, label
 * `reason`, one of {@link LOSS_REASONS}); each frame carries the increments since that
 * client's previous report.
 */
export const DROPPED_METRIC = 'metrics_exporter_tcp_dropped';

/** The `reason` label values of {@link DROPPED_METRIC}, indexed by the worker's `Loss`. */
export const LOSS_REASONS = ['ring_full', 'client_queue', 'invalid'] as const;

/**
 * Fill levels every client receives (with self metrics on), so that a buffer size can be chosen
 * from production traffic: gauges of the most records a thread's ring held at once (label
 * `thread`: `main`, or the thread's `worker_threads` id), of the most frames this client's queue
 * held, each since the previous report, and of the configured buffer size.
 */
export const RING_PEAK_METRIC = 'metrics_exporter_tcp_ring_peak';
export const QUEUE_PEAK_METRIC = 'metrics_exporter_tcp_client_queue_peak';
export const BUFFER_SIZE_METRIC = 'metrics_exporter_tcp_buffer_size';

/** The `thread` label of {@link RING_PEAK_METRIC} for a ring written by `worker_threads` thread `id`. */
export function threadLabel(id: number): string {
  return id === 0 ? 'main' : String(id);
}
