// Decoding independently of protobuf-es: `protoc --decode` reads every frame we send.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { NO_PROTOC, protoc, protocDecode, withClient, waitFor } from './helpers.js';

const hasProtoc = protoc() !== undefined;
if (!hasProtoc) console.log(`# SKIP protoc tests: ${NO_PROTOC}`);

test('protoc --decode=event.proto.Event reads metadata and every op', { skip: hasProtoc ? false : NO_PROTOC }, async (t) => {
  const { recorder, client } = await withClient();
  t.after(() => recorder.close());
  t.after(() => client.close());
  const key = { name: 'requests', labels: { service: 'api', region: 'eu' } };
  recorder.registerCounter(key, 'count', 'Total requests');
  recorder.counter(key).increment(3);
  recorder.counter(key).increment(2n ** 64n - 1n);
  recorder.gauge('queue_depth').set(7.5);
  recorder.gauge('queue_depth').increment(2);
  recorder.gauge('queue_depth').decrement(1.5);
  recorder.histogram('latency').record(0.25);
  await waitFor('7 frames', () => client.frames().length === 7);
  const text = client.frames().map((f) => protocDecode(f).replace(/timestamp \{[^}]*\}\s*/g, 'TS '));
  const squash = (s: string) => s.replace(/\s+/g, ' ').trim();
  assert.deepEqual(text.map(squash), [
    'metadata { name: "requests" unit_value: "count" description_value: "Total requests" }',
    'metric { name: "requests" TS labels { key: "region" value: "eu" } labels { key: "service" value: "api" } counter { value: 3 } }',
    'metric { name: "requests" TS labels { key: "region" value: "eu" } labels { key: "service" value: "api" } counter { value: 18446744073709551615 } }',
    'metric { name: "queue_depth" TS gauge { absolute: 7.5 } }',
    'metric { name: "queue_depth" TS gauge { increment: 2 } }',
    'metric { name: "queue_depth" TS gauge { decrement: 1.5 } }',
    'metric { name: "latency" TS histogram { value: 0.25 } }',
  ]);
  // And the timestamp protoc reads is the wall clock.
  const seconds = Number(/seconds: (\d+)/.exec(protocDecode(client.frames()[1]!))![1]);
  assert.ok(Math.abs(seconds - Date.now() / 1000) < 10);
});

test("protocol('observer-0.11'): fromBinary with that schema and protoc --decode agree", async (t) => {
  const { fromBinary } = await import('@bufbuild/protobuf');
  const { EventSchema } = await import('../src/gen/observer_event_pb.js');
  const { recorder, client } = await withClient((b) => b.protocol('observer-0.11'));
  t.after(() => recorder.close());
  t.after(() => client.close());
  recorder.registerHistogram('latency', 'seconds', 'how long');
  recorder.counter({ name: 'requests', labels: { b: '2', a: '1' } }).increment(3);
  recorder.counter('requests').increment(0);
  recorder.gauge('depth').set(7.5);
  recorder.gauge('depth').increment(2);
  recorder.gauge('depth').decrement(1.5);
  recorder.histogram('latency').record(0);
  await waitFor('7 frames', () => client.frames().length === 7);
  const ops = client.frames().map((f) => {
    const e = fromBinary(EventSchema, f).event;
    return e.case === 'metadata' ? `meta ${e.value.name} ${e.value.unit.value}` : `${e.value!.name} ${e.value!.operation.case} ${e.value!.operation.value}`;
  });
  assert.deepEqual(ops, [
    'meta latency seconds',
    'requests incrementCounter 3',
    'requests incrementCounter 0',
    'depth setGauge 7.5',
    'depth incrementGauge 2',
    'depth decrementGauge 1.5',
    'latency recordHistogram 0',
  ]);
  if (!hasProtoc) return t.skip(NO_PROTOC);
  const squash = (s: string) => s.replace(/timestamp \{[^}]*\}\s*/g, '').replace(/\s+/g, ' ').trim();
  assert.deepEqual(client.frames().slice(1).map((f) => squash(protocDecode(f, 'observer-0.11'))), [
    'metric { name: "requests" labels { key: "a" value: "1" } labels { key: "b" value: "2" } increment_counter: 3 }',
    'metric { name: "requests" increment_counter: 0 }',
    'metric { name: "depth" set_gauge: 7.5 }',
    'metric { name: "depth" increment_gauge: 2 }',
    'metric { name: "depth" decrement_gauge: 1.5 }',
    'metric { name: "latency" record_histogram: 0 }',
  ]);
});
