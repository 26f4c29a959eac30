// The client's series model, shared by the observer and the relay.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SeriesModel, seriesKind, type ClientEvent, type MetricOp } from '../src/client/index.js';
import { Values } from './helpers.js';

const metric = (name: string, op: MetricOp, labels: Record<string, string> = {}): ClientEvent => ({ kind: 'metric', name, labels, op });

test('series are keyed by kind + name + labels in any order, and the six ops update them in place', () => {
  const model = new SeriesModel({ histogram: () => new Values() });
  const c = model.apply(metric('requests', { type: 'counterIncrement', value: 2n }, { b: '2', a: '1' }))!;
  assert.equal(model.apply(metric('requests', { type: 'counterIncrement', value: 3n }, { a: '1', b: '2' })), c, 'same series object');
  assert.equal(c.total, 5n);
  assert.deepEqual(Object.keys(c.labels), ['a', 'b']);
  model.apply(metric('requests', { type: 'counterSet', value: 2n ** 63n }, { a: '1', b: '2' }));
  assert.equal(c.total, 2n ** 63n, 'counters stay exact beyond 2^53');

  const g = model.apply(metric('depth', { type: 'gaugeIncrement', value: 2.5 }))!;
  assert.equal(g.value, 2.5, 'an increment of a new gauge starts from 0');
  model.apply(metric('depth', { type: 'gaugeDecrement', value: 0.5 }));
  assert.equal(g.value, 2);
  model.apply(metric('depth', { type: 'gaugeSet', value: 10 }));
  assert.equal(g.value, 10);

  const h = model.apply(metric('latency', { type: 'histogramRecord', value: 0.25 }))!;
  model.apply(metric('latency', { type: 'histogramRecord', value: Number.POSITIVE_INFINITY }));
  assert.deepEqual(h.histogram?.values, [0.25, Number.POSITIVE_INFINITY]);
  assert.equal(c.histogram, undefined);

  // The same name and labels as another kind is another series.
  const asGauge = model.apply(metric('requests', { type: 'gaugeSet', value: 1 }, { a: '1', b: '2' }))!;
  assert.notEqual(asGauge, c);
  assert.deepEqual(
    [...model.series.values()].map((s) => [s.kind, s.name]),
    [['counter', 'requests'], ['gauge', 'depth'], ['histogram', 'latency'], ['gauge', 'requests']],
  );
  assert.equal(model.events, 9);
  assert.deepEqual(['counterIncrement', 'counterSet', 'gaugeSet', 'gaugeIncrement', 'gaugeDecrement', 'histogramRecord'].map((t) => seriesKind(t as MetricOp['type'])), [
    'counter', 'counter', 'gauge', 'gauge', 'gauge', 'histogram',
  ]);
});

test('labels whose text could collide stay apart', () => {
  const model = new SeriesModel({ histogram: () => new Values() });
  const inc = { type: 'counterIncrement', value: 1n } as const;
  model.apply(metric('a', inc, { 'x,y': 'z' }));
  model.apply(metric('a', inc, { x: 'y,z' }));
  model.apply(metric('a"', inc));
  model.apply(metric('a', inc, { '': '' }));
  assert.equal(model.series.size, 4);
});

test('scopes: per-exporter series and metadata, reset on reconnect, dropped for good', () => {
  const model = new SeriesModel({ histogram: () => new Values() });
  model.apply({ kind: 'metadata', name: 'requests', metricKind: 'counter', unit: 'count', description: 'served' }, 'a:1');
  const a = model.apply(metric('requests', { type: 'counterIncrement', value: 4n }), 'a:1')!;
  const b = model.apply(metric('requests', { type: 'counterIncrement', value: 7n }), 'b:2')!;
  const ga = model.apply(metric('depth', { type: 'gaugeSet', value: 3 }), 'a:1')!;
  const ha = model.apply(metric('lat', { type: 'histogramRecord', value: 1 }), 'a:1')!;
  assert.notEqual(a, b);
  assert.deepEqual([a.scope, b.scope], ['a:1', 'b:2']);
  assert.deepEqual(model.describe('requests', 'a:1'), { kind: 'counter', unit: 'count', description: 'served' });
  assert.equal(model.describe('requests', 'b:2'), undefined);
  assert.deepEqual(model.seriesNamed('counter', 'requests'), [a, b]);

  model.resetScope('a:1');
  assert.deepEqual([a.total, b.total, ga.known, ha.histogram?.values.length], [0n, 7n, false, 0], 'counters and histograms restart, gauges are unknown until set');

  model.dropScope('a:1');
  assert.deepEqual([...model.series.values()], [b]);
  assert.deepEqual(model.seriesNamed('counter', 'requests'), [b]);
  assert.deepEqual(model.seriesNamed('gauge', 'depth'), []);
  assert.equal(model.describe('requests', 'a:1'), undefined);
});

test('maxSeries bounds series and metadata names; the first refusal is reported once', () => {
  let told = 0;
  const model = new SeriesModel({ histogram: () => new Values(), maxSeries: 2, onFirstRefusal: () => told++ });
  for (let i = 0; i < 5; i++) model.apply(metric(`m${i}`, { type: 'gaugeSet', value: i }));
  for (let i = 0; i < 3; i++) model.apply({ kind: 'metadata', name: `m${i}`, metricKind: 'gauge' });
  model.apply({ kind: 'metadata', name: 'm0', metricKind: 'gauge', unit: 'bytes' }); // a known name is replaced
  assert.equal(model.series.size, 2);
  assert.equal(model.refused, 4);
  assert.equal(told, 1);
  assert.equal(model.describe('m0')?.unit, 'bytes');
  assert.equal(model.describe('m2'), undefined);
  // A series already kept still updates.
  model.apply(metric('m1', { type: 'gaugeIncrement', value: 1 }));
  assert.equal(model.seriesFor('gauge', 'm1', {})?.value, 2);
});

test("a gauge's value is known only once a set arrived: increments alone, or a reset (a new connection), leave its base unknown", () => {
  const model = new SeriesModel({ histogram: () => new Values() });
  const g = model.apply(metric('in_flight', { type: 'gaugeIncrement', value: 1 }))!;
  assert.equal(g.known, false, 'connected after the app began: the base is unknown');
  model.apply(metric('in_flight', { type: 'gaugeSet', value: 5 }));
  model.apply(metric('in_flight', { type: 'gaugeDecrement', value: 1 }));
  assert.deepEqual([g.known, g.value], [true, 4]);
  model.resetScope('');
  model.apply(metric('in_flight', { type: 'gaugeIncrement', value: 1 }));
  assert.equal(g.known, false, 'after a reconnect (maybe a restarted app) only a set tells the value');
  const c = model.apply(metric('jobs', { type: 'counterIncrement', value: 1n }))!;
  assert.equal(c.known, true, 'counters count from the connection: always known');
});

test('maxBytes bounds the bytes of names, labels, units and descriptions a model holds', () => {
  const model = new SeriesModel({ histogram: () => new Values(), maxBytes: 1000 });
  for (let i = 0; i < 20; i++) model.apply(metric('m', { type: 'gaugeSet', value: i }, { i: `${i}`.padStart(100, '0') }));
  for (let i = 0; i < 20; i++) model.apply({ kind: 'metadata', name: `d${i}`, metricKind: 'gauge', description: 'x'.repeat(100) });
  const held = model.bytes;
  assert.ok(held <= 1000, `${held} bytes held`);
  assert.ok(model.series.size >= 5 && model.series.size < 10, `${model.series.size} series`);
  assert.equal(model.refused, 40 - model.series.size - [...Array(20).keys()].filter((i) => model.describe(`d${i}`) !== undefined).length);
});
