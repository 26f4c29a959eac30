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
