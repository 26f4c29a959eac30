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
