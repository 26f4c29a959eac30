// Prometheus naming conventions for what exporters send.
import type { MetricKind } from 'metrics-exporter-tcp/client';

/** Letters, digits, `_` and `:`, not starting with a digit. */
export function sanitizeName(name: string): string {
  const s = name.replace(/[^a-zA-Z0-9_:]/g, '_');
  return s === '' || /^[0-9]/.test(s) ? `_${s}` : s;
}

/** Label names: letters, digits and `_`, not starting with a digit or `__`. */
export function sanitizeLabel(label: string): string {
  const s = label.replace(/[^a-zA-Z0-9_]/g, '_');
  const t = s === '' || /^[0-9]/.test(s) ? `_${s}` : s;
  return t.startsWith('__') ? `x${t}` : t;
}

/**
 * A series' labels for export: names sanitized (the first of two that sanitize alike wins),
 * and user labels called `exporter` (or `le`, on histograms) renamed `exported_…`, as
 * Prometheus does for clashing target labels, so the relay's own labels never overwrite them.
 */
export function exportLabels(labels: Record<string, string>, exporter: string, histogram: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    let name = sanitizeLabel(k);
    if (name === 'exporter' || (histogram && name === 'le')) name = `exported_${name}`;
    if (!(name in out)) out[name] = v;
  }
  out.exporter = exporter;
  return out;
}

const UNIT_SUFFIX: Record<string, string> = { seconds: '_seconds', bytes: '_bytes' };

/**
 * The family name Prometheus users expect: a `seconds` or `bytes` unit is spelled in the name,
 * counters end in `_total`. `requests` → `requests_total`; histogram `latency` (seconds) →
 * `latency_seconds` (with `_bucket`, `_sum`, `_count` series); gauge `queue_depth` → itself.
 */
export function familyName(name: string, kind: MetricKind, unit: string | undefined): string {
  let base = sanitizeName(name);
  if (kind === 'counter' && base.endsWith('_total')) base = base.slice(0, -'_total'.length);
  const suffix = unit === undefined ? undefined : UNIT_SUFFIX[unit];
  if (suffix !== undefined && !base.endsWith(suffix)) base += suffix;
  return kind === 'counter' ? `${base}_total` : base;
}
