// The exposition formats a Prometheus endpoint serves, which one a scraper asks for, and a
// histogram as the protobuf format carries it (classic and native buckets). Shared by every tool
// that serves /metrics (the exporter's worker, the relay), as the names are (./prometheus.ts).
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { sizeDelimitedEncode } from '@bufbuild/protobuf/wire';
import { MetricFamilySchema, MetricType, type HistogramSchema, type MetricSchema } from '../gen/prometheus_metrics_pb.js';
import type { MetricKind } from './events.js';
import { NATIVE_ZERO_THRESHOLD, type NativeBuckets } from './native-histogram.js';

/**
 * Prometheus text 0.0.4, OpenMetrics 1.0.0 text, and the protobuf format (length-delimited
 * `MetricFamily` messages), the only one with native histograms.
 */
export type Format = 'text' | 'openmetrics' | 'protobuf';

export const CONTENT_TYPES: Readonly<Record<Format, string>> = {
  text: 'text/plain; version=0.0.4; charset=utf-8',
  openmetrics: 'application/openmetrics-text; version=1.0.0; charset=utf-8',
  protobuf: 'application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited',
};

/**
 * The format a scraper asks for in its Accept header, of those `served`: protobuf if it takes it
 * (Prometheus does with native histograms on), OpenMetrics if it takes that (Prometheus's
 * default), else text 0.0.4.
 */
export function negotiate(accept: string | undefined, served: readonly Format[] = ['text', 'openmetrics', 'protobuf']): Format {
  if (accept === undefined) return 'text';
  if (served.includes('protobuf') && accept.includes('application/vnd.google.protobuf') && accept.includes('proto=io.prometheus.client.MetricFamily')) return 'protobuf';
  return served.includes('openmetrics') && accept.includes('application/openmetrics-text') ? 'openmetrics' : 'text';
}

/** What a histogram message is made of. */
export interface HistogramData {
  readonly count: number;
  readonly sum: number;
  /** Classic bucket upper bounds, ascending (finite). */
  readonly bounds: readonly number[];
  /** Cumulative counts at each bound (then, unused here, the +Inf bucket: the count). */
  readonly cumulative: readonly number[];
  /** The native buckets' schema, zero bucket, and buckets above and below it. */
  readonly schema: number;
  readonly zeroCount: number;
  readonly positive: NativeBuckets;
  readonly negative: NativeBuckets;
}

/** A histogram as the protobuf format carries it: classic buckets and native ones. */
export function histogramMessage(h: HistogramData): MessageInitShape<typeof HistogramSchema> {
  return {
    sampleCount: BigInt(h.count),
    sampleSum: h.sum,
    bucket: h.bounds.map((upperBound, i) => ({ upperBound, cumulativeCount: BigInt(h.cumulative[i]!) })),
    schema: h.schema,
    zeroThreshold: NATIVE_ZERO_THRESHOLD,
    zeroCount: BigInt(h.zeroCount),
    positiveSpan: h.positive.spans,
    positiveDelta: h.positive.deltas.map(BigInt),
    negativeSpan: h.negative.spans,
    negativeDelta: h.negative.deltas.map(BigInt),
  };
}

/** One series of a family, for the protobuf format: its labels (sanitized) and its value. */
export type FamilyMember = { readonly labels: readonly (readonly [string, string])[] } & (
  | { readonly counter: number }
  | { readonly gauge: number }
  | { readonly histogram: HistogramData }
);

const TYPES: Readonly<Record<MetricKind, MetricType>> = { counter: MetricType.COUNTER, gauge: MetricType.GAUGE, histogram: MetricType.HISTOGRAM };

/** A metric family for the protobuf format. */
export interface FamilyData {
  readonly name: string;
  readonly type: MetricKind;
  readonly help: string;
  readonly members: Iterable<FamilyMember>;
}

/** Families written per chunk of the protobuf format (a few hundred KiB at most). */
const FAMILIES_PER_CHUNK = 64;

/** `families` as length-delimited `MetricFamily` messages, in chunks encoded as they are pulled. */
export function* protobufChunks(families: readonly FamilyData[]): Generator<Buffer, void, undefined> {
  let parts: Uint8Array[] = [];
  for (let i = 0; i < families.length; i++) {
    const { name, type, help, members } = families[i]!;
    parts.push(encodeFamily(name, type, help, members));
    if (parts.length === FAMILIES_PER_CHUNK || i === families.length - 1) {
      yield Buffer.concat(parts);
      parts = [];
    }
  }
}

/** A metric family as one length-delimited `MetricFamily` message. */
function encodeFamily(name: string, type: MetricKind, help: string, members: Iterable<FamilyMember>): Uint8Array {
  const metric: MessageInitShape<typeof MetricSchema>[] = [];
  for (const m of members) {
    const label = m.labels.map(([name, value]) => ({ name, value }));
    if ('histogram' in m) metric.push({ label, histogram: histogramMessage(m.histogram) });
    else if ('counter' in m) metric.push({ label, counter: { value: m.counter } });
    else metric.push({ label, gauge: { value: m.gauge } });
  }
  return sizeDelimitedEncode(MetricFamilySchema, create(MetricFamilySchema, { name, help, type: TYPES[type], metric }));
}
