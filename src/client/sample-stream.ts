// A made-up stream in either wire format, for warming up a reader and what it feeds.
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { sizeDelimitedEncode } from '@bufbuild/protobuf/wire';
import * as seed from '../gen/event_pb.js';
import * as observer from '../gen/observer_event_pb.js';
import type { ClientProtocol } from './protocol.js';

const NAMES = ['sample_requests', 'sample_queue_depth', 'sample_latency'] as const;

/**
 * A length-delimited stream of `protocol` as an exporter writes it: metadata for three names,
 * then `frames` metric frames cycling through a labeled counter, gauge and histogram (ten label
 * values each), with timestamps.
 *
 * The JIT compiles a decoder's code only once it ran for a while; until then it is ten times
 * slower, and a client that starts reading a busy exporter falls behind in its first
 * milliseconds. Feeding this to a throwaway reader and model of the same classes first (for
 * about 100 ms) makes the real ones start at full speed:
 *
 * ```ts
 * const sample = sampleStream('seed');
 * const reader = new MetricReader();
 * const feed = new SeriesModel({ histogram: () => new MyBuckets() }).feed();
 * for (let i = 0; i < 30; i++) { reader.push(sample); feed.drain(reader); }
 * ```
 */
export function sampleStream(protocol: ClientProtocol = 'seed', frames = 3000): Uint8Array {
  const parts: Uint8Array[] = [];
  const seconds = BigInt(Math.floor(Date.now() / 1000));
  NAMES.forEach((name, metricType) => {
    const metadata = { name, metricType, unit: { case: 'unitValue' as const, value: metricType === 2 ? 'seconds' : 'count' } };
    parts.push(
      protocol === 'seed'
        ? sizeDelimitedEncode(seed.EventSchema, create(seed.EventSchema, { event: { case: 'metadata', value: metadata } }))
        : sizeDelimitedEncode(observer.EventSchema, create(observer.EventSchema, { event: { case: 'metadata', value: metadata } })),
    );
  });
  for (let i = 0; i < frames; i++) {
    const kind = i % 3;
    const common = {
      name: NAMES[kind]!,
      labels: { route: `/route/${i % 10}`, service: 'sample' },
      timestamp: { seconds: seconds + BigInt(i >> 9), nanos: (i % 512) * 1000 },
    };
    const v = ((i % 100) + 1) / 1000;
    if (protocol === 'seed') {
      const value: MessageInitShape<typeof seed.MetricSchema>['value'] =
        kind === 0 ? { case: 'counter', value: { value: 1n } } : kind === 1 ? { case: 'gauge', value: { value: { case: 'absolute', value: v } } } : { case: 'histogram', value: { value: v } };
      parts.push(sizeDelimitedEncode(seed.EventSchema, create(seed.EventSchema, { event: { case: 'metric', value: { ...common, value } } })));
    } else {
      const operation: MessageInitShape<typeof observer.MetricSchema>['operation'] =
        kind === 0 ? { case: 'incrementCounter', value: 1n } : kind === 1 ? { case: 'setGauge', value: v } : { case: 'recordHistogram', value: v };
      parts.push(sizeDelimitedEncode(observer.EventSchema, create(observer.EventSchema, { event: { case: 'metric', value: { ...common, operation } } })));
    }
  }
  return new Uint8Array(Buffer.concat(parts));
}
