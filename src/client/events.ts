import { fromBinary, type DescMessage, type MessageShape } from '@bufbuild/protobuf';
import * as seed from '../gen/event_pb.js';
import * as observer from '../gen/observer_event_pb.js';
import { ClientError } from './errors.js';
import type { ClientProtocol } from './protocol.js';

/** What a metric name was registered as. */
export type MetricKind = 'counter' | 'gauge' | 'histogram';

/** A metric name's registration; sent to a client when it connects, and when registered. */
export interface MetadataEvent {
  kind: 'metadata';
  name: string;
  metricKind: MetricKind;
  /** Absent when none was registered. */
  unit?: string;
  /** Absent when none was registered. */
  description?: string;
}

/** One recorded value. */
export interface MetricEvent {
  kind: 'metric';
  name: string;
  labels: Record<string, string>;
  /** When it was recorded (since the Unix epoch); absent if the sender set none. */
  timestamp?: { seconds: bigint; nanos: number };
  op: MetricOp;
}

/**
 * What was done to the metric; switch on `type`. Counters carry a `bigint` (a uint64 on the
 * wire), gauges and histograms a `number`.
 * - `counterIncrement`: add `value` (the seed's `Counter`, observer's `increment_counter`).
 * - `counterSet`: the counter is now `value` (observer protocol only).
 * - `gaugeSet`, `gaugeIncrement`, `gaugeDecrement`: the seed's `Gauge` absolute / increment /
 *   decrement, observer's `set_gauge` / `increment_gauge` / `decrement_gauge`.
 * - `histogramRecord`: one observation.
 */
export type MetricOp =
  | { type: 'counterIncrement' | 'counterSet'; value: bigint }
  | { type: 'gaugeSet' | 'gaugeIncrement' | 'gaugeDecrement' | 'histogramRecord'; value: number };

/** What the client yields, whatever the protocol. */
export type ClientEvent = MetadataEvent | MetricEvent;

const KINDS: readonly MetricKind[] = ['counter', 'gauge', 'histogram'];

/**
 * Decodes one frame body (an `event.proto.Event`, without its length prefix).
 * @throws ClientError `DECODE` when it is not valid protobuf for `protocol`, holds neither
 *   metadata nor a metric, has an unknown metric type, or a metric without a value.
 */
export function toClientEvent(frame: Uint8Array, protocol: ClientProtocol): ClientEvent {
  if (protocol === 'seed') {
    const { event } = decode(seed.EventSchema, frame, protocol);
    if (event.case === 'metadata') return metadata(event.value);
    if (event.case === 'metric') return metric(event.value, seedOp(event.value));
  } else {
    const { event } = decode(observer.EventSchema, frame, protocol);
    if (event.case === 'metadata') return metadata(event.value);
    if (event.case === 'metric') return metric(event.value, observerOp(event.value));
  }
  throw new ClientError('DECODE', 'a frame holds neither metadata nor a metric');
}

function decode<Desc extends DescMessage>(schema: Desc, frame: Uint8Array, protocol: ClientProtocol): MessageShape<Desc> {
  try {
    return fromBinary(schema, frame, { readUnknownFields: false });
  } catch (err) {
    throw new ClientError('DECODE', `a frame is not a valid ${protocol} Event: ${(err as Error).message}`, { cause: err });
  }
}

function seedOp(m: seed.Metric): MetricOp {
  const v = m.value;
  switch (v.case) {
    case 'counter':
      return { type: 'counterIncrement', value: v.value.value };
    case 'histogram':
      return { type: 'histogramRecord', value: v.value.value };
    case 'gauge': {
      const g = v.value.value;
      if (g.case === 'absolute') return { type: 'gaugeSet', value: g.value };
      if (g.case === 'increment') return { type: 'gaugeIncrement', value: g.value };
      if (g.case === 'decrement') return { type: 'gaugeDecrement', value: g.value };
    }
  }
  throw noValue(m.name);
}

function observerOp(m: observer.Metric): MetricOp {
  const o = m.operation;
  switch (o.case) {
    case 'incrementCounter':
      return { type: 'counterIncrement', value: o.value };
    case 'setCounter':
      return { type: 'counterSet', value: o.value };
    case 'setGauge':
      return { type: 'gaugeSet', value: o.value };
    case 'incrementGauge':
      return { type: 'gaugeIncrement', value: o.value };
    case 'decrementGauge':
      return { type: 'gaugeDecrement', value: o.value };
    case 'recordHistogram':
      return { type: 'histogramRecord', value: o.value };
  }
  throw noValue(m.name);
}

function noValue(name: string): ClientError {
  return new ClientError('DECODE', `metric ${JSON.stringify(name)} carries no value`);
}

// Both schemas share Metadata, and Metric's name, labels and timestamp.
function metadata(m: seed.Metadata): MetadataEvent {
  const metricKind = KINDS[m.metricType];
  if (metricKind === undefined) throw new ClientError('DECODE', `metadata for ${JSON.stringify(m.name)} has an unknown metric type ${m.metricType}`);
  const e: MetadataEvent = { kind: 'metadata', name: m.name, metricKind };
  if (m.unit.case !== undefined) e.unit = m.unit.value;
  if (m.description.case !== undefined) e.description = m.description.value;
  return e;
}

function metric(m: Pick<seed.Metric, 'name' | 'labels' | 'timestamp'>, op: MetricOp): MetricEvent {
  const e: MetricEvent = { kind: 'metric', name: m.name, labels: m.labels, op };
  if (m.timestamp !== undefined) e.timestamp = { seconds: m.timestamp.seconds, nanos: m.timestamp.nanos };
  return e;
}
