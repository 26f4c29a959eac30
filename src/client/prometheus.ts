// Prometheus names and text-format pieces for what exporters send: one module for every tool
// that serves these metrics to Prometheus (the exporter's own /metrics, the relay), so that a
// metric has the same name wherever it is scraped.
import type { MetricKind } from './events.js';

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
  return labelPairs(labels, histogram, own)?.map(([name, value]) => `${name}="${escapeLabelValue(value)}"`).join(',');
}

/** {@link labelText}'s labels as `[name, value]` pairs (names sanitized, values as they are), for formats that are not text. */
export function labelPairs(labels: Readonly<Record<string, string>>, histogram: boolean, own: Readonly<Record<string, string>> = {}): [string, string][] | undefined {
  const names = new Set<string>(Object.keys(own));
  const pairs: [string, string][] = [];
  for (const k in labels) {
    let name = sanitizeLabel(k);
    if (Object.hasOwn(own, name) || (histogram && name === 'le')) name = `exported_${name}`;
    if (names.has(name)) return undefined;
    names.add(name);
    pairs.push([name, labels[k]!]);
  }
  for (const k in own) pairs.push([k, own[k]!]);
  return pairs;
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

/** prom-client's default buckets, for durations in seconds. */
const SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** 1, 2, 5 per decade from 1 to 10 000: for counts, and anything without a unit. */
const COUNTS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000];
/** Sizes in bytes, a factor of 4 apart from 256 B to 1 GiB. */
const BYTES = Array.from({ length: 12 }, (_, i) => 256 * 4 ** i);
/** Rates in bits per second, a factor of 10 apart from 1 kbit/s to 100 Gbit/s. */
const BITS = Array.from({ length: 9 }, (_, i) => 1000 * 10 ** i);

/** `bounds` expressed in a unit `per` times smaller (seconds → milliseconds: 1000). */
const scaled = (bounds: readonly number[], per: number): number[] => bounds.map((b) => Number((b * per).toPrecision(12)));

const BUCKETS_BY_UNIT: Readonly<Record<string, readonly number[]>> = {
  seconds: SECONDS,
  milliseconds: scaled(SECONDS, 1e3),
  microseconds: scaled(SECONDS, 1e6),
  nanoseconds: scaled(SECONDS, 1e9),
  bytes: BYTES,
  kibibytes: scaled(BYTES, 2 ** -10),
  mebibytes: scaled(BYTES, 2 ** -20),
  gigibytes: scaled(BYTES, 2 ** -30),
  tebibytes: scaled(BYTES, 2 ** -40),
  bits_per_second: BITS,
  kilobits_per_second: scaled(BITS, 1e-3),
  megabits_per_second: scaled(BITS, 1e-6),
  gigabits_per_second: scaled(BITS, 1e-9),
  terabits_per_second: scaled(BITS, 1e-12),
  percent: [1, 5, 10, 25, 50, 75, 90, 95, 99, 100],
};

/**
 * The classic buckets a histogram gets when none were chosen for it: ones that fit what its
 * unit measures (durations from 5 ms to 10 s in their unit, sizes from 256 B to 1 GiB, rates,
 * percentages), else 1-2-5 per decade from 1 to 10 000. A bytes histogram with duration buckets
 * would land entirely in +Inf.
 */
export function defaultBuckets(unit: string | undefined): readonly number[] {
  return (unit === undefined ? undefined : BUCKETS_BY_UNIT[unit]) ?? COUNTS;
}

/**
 * Checks classic bucket bounds chosen by a user: finite numbers in ascending order, at least one.
 * @throws TypeError naming `what`
 */
export function checkBuckets(what: string, bounds: unknown): number[] {
  if (!Array.isArray(bounds) || bounds.length === 0 || bounds.length > 256) throw new TypeError(`${what} must be an array of 1 to 256 bucket bounds`);
  bounds.forEach((b: unknown, i) => {
    if (typeof b !== 'number' || !Number.isFinite(b) || (i > 0 && b <= (bounds[i - 1] as number))) {
      throw new TypeError(`${what} must be finite numbers in ascending order, got ${String(b)} at ${i}`);
    }
  });
  return [...(bounds as number[])];
}
