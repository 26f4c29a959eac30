// Prometheus names and text-format pieces for what exporters send: one module for every tool
// that serves these metrics to Prometheus (the relay now; the exporter's own /metrics later), so
// that a metric has the same name wherever it is scraped.
import type { MetricKind } from './events.js';

/** The text exposition format's content type. */
export const TEXT_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** A metric name: letters, digits, `_` and `:`, not starting with a digit. */
export function sanitizeName(name: string): string {
  const s = name.replace(/[^a-zA-Z0-9_:]/g, '_');
  return s === '' || /^[0-9]/.test(s) ? `_${s}` : s;
}

/** A label name: letters, digits and `_`, not starting with a digit or `__` (reserved). */
export function sanitizeLabel(label: string): string {
  const s = label.replace(/[^a-zA-Z0-9_]/g, '_');
  const t = s === '' || /^[0-9]/.test(s) ? `_${s}` : s;
  return t.startsWith('__') ? `x${t}` : t;
}

const UNIT_SUFFIX: Readonly<Record<string, string>> = { seconds: '_seconds', bytes: '_bytes' };

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

/** The names a family of `kind` writes samples under. */
export function sampleNames(family: string, kind: MetricKind): string[] {
  return kind === 'histogram' ? [`${family}_bucket`, `${family}_sum`, `${family}_count`] : [family];
}

/**
 * A series' labels as Prometheus label text (`a="1",exporter="h:1"`, names sanitized, values
 * escaped, in the order given then `own`), or `undefined` when two of its labels sanitize
 * alike (no faithful series exists). A label that clashes with one of `own` (the tool's own
 * labels, e.g. `exporter`) or with `le` on a histogram is renamed `exported_…`, as Prometheus
 * does for clashing target labels.
 */
export function labelText(labels: Readonly<Record<string, string>>, histogram: boolean, own: Readonly<Record<string, string>> = {}): string | undefined {
  const names = new Set<string>(Object.keys(own));
  const parts: string[] = [];
  for (const k in labels) {
    let name = sanitizeLabel(k);
    if (Object.hasOwn(own, name) || (histogram && name === 'le')) name = `exported_${name}`;
    if (names.has(name)) return undefined;
    names.add(name);
    parts.push(`${name}="${escapeLabelValue(labels[k]!)}"`);
  }
  for (const k in own) parts.push(`${k}="${escapeLabelValue(own[k]!)}"`);
  return parts.join(',');
}

/** A label value as the text format writes it: `\`, `"` and line feeds escaped. */
export function escapeLabelValue(v: string): string {
  return /[\\"\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : v;
}

/** HELP text as the text format writes it: `\` and line feeds escaped. */
export function escapeHelp(v: string): string {
  return /[\\\n]/.test(v) ? v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n') : v;
}

/** A sample value as the text format writes it: `NaN`, `+Inf`, `-Inf`, or the shortest exact decimal. */
export function formatValue(v: number): string {
  if (Number.isFinite(v)) return String(v);
  return v > 0 ? '+Inf' : v < 0 ? '-Inf' : 'NaN';
}

/**
 * Text that a tool writes line by line, handed out in chunks of about `chunkBytes` (a stream
 * written chunk by chunk, with backpressure, instead of one string of the whole exposition).
 */
export class TextChunks {
  private text = '';

  constructor(private readonly chunkBytes = 64 * 1024) {}

  /** Appends `s`; returns a chunk once the text reaches `chunkBytes`. */
  add(s: string): Buffer | undefined {
    this.text += s;
    return this.text.length >= this.chunkBytes ? this.flush() : undefined;
  }

  /** What is left, as a chunk (`undefined` if nothing). */
  flush(): Buffer | undefined {
    if (this.text === '') return undefined;
    const chunk = Buffer.from(this.text);
    this.text = '';
    return chunk;
  }
}
