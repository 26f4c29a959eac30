// The fast decoder (MetricReader, and SeriesFeed on top of it) against the reference: protobuf-es
// fromBinary (through toClientEvent) on frames split by protobuf-es's own sizeDelimitedPeek.
// Streams: captures of real exporters (ours, both formats; the Rust crate's golden captures)
// and generated ones in every layout protobuf allows, fed in chunks cut at every offset.
import { create, toBinary } from '@bufbuild/protobuf';
import { BinaryWriter, WireType, sizeDelimitedPeek } from '@bufbuild/protobuf/wire';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { test } from 'node:test';
import { TcpBuilder } from '../src/index.js';
import * as seedPb from '../src/gen/event_pb.js';
import * as observerPb from '../src/gen/observer_event_pb.js';
import { ClientError, MetricReader, SeriesModel, TcpClient, sampleStream, toClientEvent, type ClientEvent, type MetricOp } from '../src/client/index.js';
import { Rng, baseSeed, chunks, framed, type WireProtocol } from './fuzz-input.js';
import { FILL_METRICS, Values, waitFor } from './helpers.js';

const PROTOCOLS: WireProtocol[] = ['seed', 'observer-0.11'];

/** What a decoder made of a stream: its events, and the code of the error that ended it, if any. */
interface Outcome {
  events: ClientEvent[];
  error?: string;
}

/** The reference: protobuf-es splits the stream and decodes every frame. */
function reference(bytes: Uint8Array, protocol: WireProtocol): Outcome {
  const events: ClientEvent[] = [];
  for (let rest = bytes; rest.length > 0; ) {
    const peek = sizeDelimitedPeek(rest);
    assert.ok(!peek.eof && peek.offset + peek.size <= rest.length, 'generated streams are whole frames');
    try {
      events.push(toClientEvent(rest.subarray(peek.offset, peek.offset + peek.size), protocol));
    } catch (err) {
      return { events, error: (err as ClientError).code };
    }
    rest = rest.subarray(peek.offset + peek.size);
  }
  return { events };
}

/** The fast decoder fed `pieces` in order. */
function fast(pieces: Uint8Array[], protocol: WireProtocol | 'auto', maxKeys = Number.POSITIVE_INFINITY): Outcome {
  const reader = new MetricReader({ protocol, maxKeys });
  const events: ClientEvent[] = [];
  try {
    for (const piece of pieces) {
      reader.push(piece);
      while (reader.next() !== undefined) events.push(reader.event());
    }
  } catch (err) {
    assert.ok(err instanceof ClientError, String(err));
    return { events, error: err.code };
  }
  assert.equal(reader.pendingBytes, 0);
  return { events };
}

/** A model's series as comparable data. */
function state(model: SeriesModel<Values>): unknown[] {
  return [...model.series.values()].map((s) => [s.kind, s.name, s.labels, s.total, s.value, s.histogram?.values]);
}

/** Asserts the fast path equals the reference on `bytes`, cut at every offset (or as `cuts` says), events and aggregates. */
function check(bytes: Uint8Array, protocol: WireProtocol, what: string, cuts: 'every' | Rng = 'every'): Outcome {
  const want = reference(bytes, protocol);
  assert.deepEqual(fast([bytes], protocol), want, `${what}: in one chunk`);
  if (cuts === 'every') {
    for (let cut = 0; cut <= bytes.length; cut++) {
      assert.deepEqual(fast([bytes.subarray(0, cut), bytes.subarray(cut)], protocol), want, `${what}: cut at ${cut}`);
    }
    assert.deepEqual(fast(Array.from(bytes, (b) => Uint8Array.of(b)), protocol), want, `${what}: byte by byte`);
  } else {
    for (let i = 0; i < 5; i++) assert.deepEqual(fast(chunks(cuts, bytes), protocol), want, `${what}: random chunks (seed ${cuts.seed})`);
  }
  // The aggregate of the fast path equals the reference's events applied one by one.
  const slow = new SeriesModel({ histogram: () => new Values() });
  for (const e of want.events) slow.apply(e);
  const model = new SeriesModel({ histogram: () => new Values() });
  const reader = new MetricReader({ protocol, maxKeys: Number.POSITIVE_INFINITY });
  const feed = model.feed();
  reader.push(bytes);
  if (want.error === undefined) feed.drain(reader);
  else assert.throws(() => feed.drain(reader), (err) => err instanceof ClientError && err.code === want.error);
  assert.deepEqual(state(model), state(slow), `${what}: aggregates`);
  assert.equal(model.events, slow.events);
  return want;
}

// ---- Generated streams: every op, in every layout protobuf allows ----

const NAMES = ['requests', '', 'é', '名前', '📈 up', 'n'.repeat(130)];
const TEXTS = ['', 'api', 'ž', '字', '😀', 'v'.repeat(130)];
const COUNTS = [0n, 1n, 3n, 2n ** 49n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n];
const DOUBLES = [0, -0, 1.5, -2.25, 1e300, 5e-324, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, Number.NaN];

const LD = WireType.LengthDelimited;
const field = (build: (w: BinaryWriter) => void): Uint8Array => {
  const w = new BinaryWriter();
  build(w);
  return w.finish();
};

function labelField(r: Rng, k: string, v: string): Uint8Array {
  const parts = [field((w) => w.tag(1, LD).string(k)), field((w) => w.tag(2, LD).string(v))];
  if (r.chance(0.1)) parts.reverse(); // value first
  if (r.chance(0.05)) parts.pop(); // a missing key or value is the empty string
  if (r.chance(0.05)) parts.push(field((w) => w.tag(7, WireType.Varint).uint32(1))); // unknown
  return field((w) => w.tag(3, LD).bytes(Buffer.concat(parts)));
}

function timestampField(r: Rng): Uint8Array {
  const parts: Uint8Array[] = [];
  if (r.chance(0.9)) parts.push(field((w) => w.tag(1, WireType.Varint).int64(r.pick([1_700_000_000n, 0n, 1n, 2n ** 40n, 2n ** 60n, -5n]))));
  if (r.chance(0.9)) parts.push(field((w) => w.tag(2, WireType.Varint).int32(r.pick([123_000_000, 0, 999_999_999, 1, -1]))));
  if (r.chance(0.1)) parts.reverse();
  if (r.chance(0.05)) parts.push(parts[0] ?? new Uint8Array(0)); // a repeated field: the last wins
  if (r.chance(0.05)) parts.push(field((w) => w.tag(9, LD).bytes(Uint8Array.of(1, 2))));
  return field((w) => w.tag(2, LD).bytes(Buffer.concat(parts)));
}

/** A value field of `protocol` for `op`, sometimes in an unusual but valid form. */
function valueField(r: Rng, protocol: WireProtocol, op: MetricOp['type']): Uint8Array {
  const count = r.pick(COUNTS);
  const double = r.pick(DOUBLES);
  if (protocol === 'observer-0.11') {
    const number = { counterIncrement: 4, counterSet: 5, gaugeIncrement: 6, gaugeDecrement: 7, gaugeSet: 8, histogramRecord: 9 }[op];
    return number <= 5 ? field((w) => w.tag(number, WireType.Varint).uint64(count)) : field((w) => w.tag(number, WireType.Bit64).double(double));
  }
  const inner = (build: (w: BinaryWriter) => void) => field(build);
  switch (op) {
    case 'gaugeSet':
    case 'gaugeIncrement':
    case 'gaugeDecrement': {
      const number = op === 'gaugeSet' ? 1 : op === 'gaugeIncrement' ? 2 : 3;
      return field((w) => w.tag(5, LD).bytes(inner((g) => g.tag(number, WireType.Bit64).double(double))));
    }
    case 'histogramRecord':
      // proto3 leaves +0 out (an empty message); a sender may write it anyway.
      return field((w) => w.tag(6, LD).bytes(Object.is(double, 0) && r.chance(0.5) ? new Uint8Array(0) : inner((h) => h.tag(1, WireType.Bit64).double(double))));
    default:
      return field((w) => w.tag(4, LD).bytes(count === 0n && r.chance(0.5) ? new Uint8Array(0) : inner((c) => c.tag(1, WireType.Varint).uint64(count))));
  }
}

const SEED_OPS: MetricOp['type'][] = ['counterIncrement', 'gaugeSet', 'gaugeIncrement', 'gaugeDecrement', 'histogramRecord'];
const OBSERVER_OPS: MetricOp['type'][] = [...SEED_OPS, 'counterSet'];

/** A small pool of keys, so that most frames repeat a key the reader knows. */
function keyPool(r: Rng): { name: string; labels: [string, string][] }[] {
  return Array.from({ length: 8 }, () => ({
    name: r.pick(NAMES),
    labels: Array.from({ length: r.int(4) }, () => [r.pick(TEXTS), r.pick(TEXTS)] as [string, string]),
  }));
}

/** One metric Event: a key of the pool, usually in the exporter's layout, sometimes not. */
function metricEvent(r: Rng, protocol: WireProtocol, pool: ReturnType<typeof keyPool>, op: MetricOp['type']): Uint8Array {
  const key = r.pick(pool);
  const labels = r.chance(0.3) ? [...key.labels].reverse() : key.labels; // labels in any order
  const fields: Uint8Array[] = [field((w) => w.tag(1, LD).string(key.name))];
  if (r.chance(0.8)) fields.push(timestampField(r));
  fields.push(...labels.map(([k, v]) => labelField(r, k, v)));
  fields.push(valueField(r, protocol, op));
  if (r.chance(0.05)) fields.shift(); // no name: ''
  if (r.chance(0.1)) fields.splice(r.int(fields.length + 1), 0, field((w) => w.tag(r.pick([10, 11, 16]), WireType.Varint).uint32(5))); // unknown
  if (r.chance(0.05)) fields.push(valueField(r, protocol, r.pick(protocol === 'seed' ? SEED_OPS : OBSERVER_OPS))); // oneof: last wins (or merges)
  if (r.chance(0.05)) fields.unshift(field((w) => w.tag(1, LD).string(r.pick(NAMES)))); // a second name: the last wins
  if (r.chance(0.1)) for (let i = fields.length - 1; i > 0; i--) { const j = r.int(i + 1); [fields[i], fields[j]] = [fields[j]!, fields[i]!]; } // any field order
  const metric = Buffer.concat(fields);
  const event = [field((w) => w.tag(2, LD).bytes(metric))];
  if (r.chance(0.03)) event.push(field((w) => w.tag(2, LD).bytes(valueField(r, protocol, op)))); // Event.metric twice: merged
  if (r.chance(0.03)) event.unshift(field((w) => w.tag(1, LD).bytes(field((m) => m.tag(1, LD).string('x'))))); // metadata, then metric: the last wins
  return Buffer.concat(event);
}

function metadataEvent(r: Rng, protocol: WireProtocol): Uint8Array {
  const value = {
    name: r.pick(NAMES),
    metricType: r.int(3),
    ...(r.chance(0.5) ? { unit: { case: 'unitValue' as const, value: r.pick(TEXTS) } } : {}),
    ...(r.chance(0.5) ? { description: { case: 'descriptionValue' as const, value: r.pick(TEXTS) } } : {}),
  };
  return protocol === 'seed'
    ? toBinary(seedPb.EventSchema, create(seedPb.EventSchema, { event: { case: 'metadata', value } }))
    : toBinary(observerPb.EventSchema, create(observerPb.EventSchema, { event: { case: 'metadata', value } }));
}

/** A stream of `n` valid frames: every op in turn, metadata now and then. */
function generated(r: Rng, protocol: WireProtocol, n: number): Uint8Array {
  const pool = keyPool(r);
  const ops = protocol === 'seed' ? SEED_OPS : OBSERVER_OPS;
  return Buffer.concat(Array.from({ length: n }, (_, i) => framed(r.chance(0.1) ? metadataEvent(r, protocol) : metricEvent(r, protocol, pool, ops[i % ops.length]!))));
}

for (const protocol of PROTOCOLS) {
  test(`MetricReader (${protocol}): generated streams in every layout equal fromBinary, cut at every offset`, () => {
    const base = baseSeed();
    const ops = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const r = new Rng(base + i);
      const bytes = generated(r, protocol, 12);
      const { events, error } = check(bytes, protocol, `seed ${r.seed}`);
      assert.equal(error, undefined, `seed ${r.seed}: generated frames are valid`);
      for (const e of events) ops.add(e.kind === 'metric' ? e.op.type : 'metadata');
    }
    // Longer streams, in random chunks.
    for (let i = 6; i < 12; i++) {
      const r = new Rng(base + i);
      check(generated(r, protocol, 300), protocol, `seed ${r.seed}`, r);
    }
    assert.deepEqual([...ops].sort(), [...(protocol === 'seed' ? SEED_OPS : OBSERVER_OPS), 'metadata'].sort(), 'every op was seen');
  });
}

test('MetricReader: u64 counters above 2^53, -0, NaN and multi-byte UTF-8 are exact', () => {
  const labels = { 'ключ': '値', '😀': '' };
  for (const protocol of PROTOCOLS) {
    const frames = COUNTS.map((value) =>
      protocol === 'seed'
        ? toBinary(seedPb.EventSchema, create(seedPb.EventSchema, { event: { case: 'metric', value: { name: '名前', labels, value: { case: 'counter', value: { value } } } } }))
        : toBinary(observerPb.EventSchema, create(observerPb.EventSchema, { event: { case: 'metric', value: { name: '名前', labels, operation: { case: 'incrementCounter', value } } } })),
    );
    const bytes = Buffer.concat(frames.map(framed));
    const { events } = check(bytes, protocol, protocol);
    assert.deepEqual(events.map((e) => (e as { op: { value: bigint } }).op.value), COUNTS);
    const model = new SeriesModel({ histogram: () => new Values() });
    const reader = new MetricReader({ protocol });
    reader.push(bytes);
    model.feed().drain(reader);
    assert.equal([...model.series.values()][0]!.total, COUNTS.reduce((a, b) => a + b));
  }
});

test('MetricReader: malformed frames fail with the code fromBinary gives, after the frames before them', () => {
  const r = new Rng(baseSeed());
  const good = generated(r, 'seed', 5);
  const bad: [string, Uint8Array][] = [
    ['invalid UTF-8 in a name', field((w) => w.tag(2, LD).bytes(field((m) => m.tag(1, LD).bytes(Uint8Array.of(0xff)).tag(4, LD).bytes(new Uint8Array(0)))))],
    ['invalid UTF-8 in a label', field((w) => w.tag(2, LD).bytes(field((m) => m.tag(3, LD).bytes(field((l) => l.tag(2, LD).bytes(Uint8Array.of(0xc3)))).tag(4, LD).bytes(new Uint8Array(0)))))],
    ['no value', field((w) => w.tag(2, LD).bytes(field((m) => m.tag(1, LD).string('x'))))],
    ['an empty gauge', field((w) => w.tag(2, LD).bytes(field((m) => m.tag(1, LD).string('x').tag(5, LD).bytes(new Uint8Array(0)))))],
    ['a cut double', field((w) => w.tag(2, LD).bytes(Uint8Array.of(0x32, 0x05, 0x09, 1, 2, 3, 4)))],
    ['an overlong name length', Uint8Array.of(0x12, 0x04, 0x0a, 0x7f, 0x22, 0x00)],
    ['an observer-0.11 value in the seed format', field((w) => w.tag(2, LD).bytes(field((m) => m.tag(4, WireType.Varint).uint64(1))))],
    ['neither metadata nor metric', Uint8Array.of(0x18, 0x01)],
    ['an unknown metric type', field((w) => w.tag(1, LD).bytes(field((m) => m.tag(2, WireType.Varint).int32(7))))],
  ];
  for (const [what, body] of bad) {
    const bytes = Buffer.concat([good, framed(body), good]);
    const { error, events } = check(bytes, 'seed', what);
    assert.equal(error, 'DECODE', what);
    assert.equal(events.length, 5, what);
  }
});

// ---- Real streams ----

const golden = (name: string) => readFileSync(new URL(`../../test/fixtures/seed-golden/${name}`, import.meta.url));

test("MetricReader: the Rust crate's captured streams equal fromBinary, cut at every offset", () => {
  for (const name of ['seed-capture.bin', 'late-client-on-connect.bin', 'phase6-clientA.bin', 'phase6-clientB.bin']) {
    const { events, error } = check(golden(name), 'seed', name);
    assert.equal(error, undefined);
    assert.ok(events.length > 0);
  }
});

/** Every byte a real exporter sent one client while `record` ran. */
async function capture(protocol: WireProtocol, record: (recorder: Awaited<ReturnType<TcpBuilder['build']>>) => void, frames: number): Promise<Uint8Array> {
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').protocol(protocol).bufferSize(4096).build();
  const { port } = recorder.address as { port: number };
  const socket = connect(port, '127.0.0.1');
  const parts: Buffer[] = [];
  socket.on('data', (d) => parts.push(d));
  try {
    await waitFor('the client', () => recorder.stats().clients === 1);
    record(recorder);
    await waitFor('every frame', () => reference(Buffer.concat(parts), protocol).events.filter((e) => !FILL_METRICS.has(e.name)).length >= frames);
    return Buffer.concat(parts);
  } finally {
    socket.destroy();
    await recorder.close();
  }
}

for (const protocol of PROTOCOLS) {
  test(`MetricReader (${protocol}): a real exporter's stream equals fromBinary, cut at every offset`, async () => {
    const bytes = await capture(
      protocol,
      (rec) => {
        rec.registerCounter({ name: 'requests' }, 'count', 'Requests served');
        rec.registerHistogram('latency', 'seconds');
        const a = rec.counter({ name: 'requests', labels: { route: '/é', service: 'api' } });
        const b = rec.counter({ name: 'requests', labels: { service: 'api', route: '/字' } });
        const g = rec.gauge({ name: 'queue', labels: { q: '😀' } });
        const h = rec.histogram('latency');
        for (let i = 0; i < 8; i++) {
          a.increment(i);
          b.increment(2n ** 64n - 1n - BigInt(i));
          a.increment(2n ** 53n + BigInt(i));
          g.set(i - 3.5);
          g.increment(0.25);
          g.decrement(-0);
          h.record(i === 0 ? -0 : i / 7);
          h.record(i % 2 ? Number.POSITIVE_INFINITY : 0);
        }
      },
      2 + 8 * 8,
    );
    const { events, error } = check(bytes, protocol, 'capture');
    assert.equal(error, undefined);
    // The stream carries the exporter's fill levels too (their metadata and values): read alike.
    assert.equal(events.filter((e) => !FILL_METRICS.has(e.name)).length, 2 + 8 * 8);
    assert.deepEqual(fast([bytes], 'auto'), { events }, 'auto tells the format');
  });
}

test('sampleStream (for warming up) is a valid stream of either format, read alike by both paths', () => {
  for (const protocol of PROTOCOLS) {
    const { events, error } = check(sampleStream(protocol, 300), protocol, `sample ${protocol}`, new Rng(baseSeed()));
    assert.equal(error, undefined);
    assert.equal(events.length, 3 + 300);
  }
});

// ---- The key cap ----

test('MetricReader: keys past maxKeys are refused and counted, never remembered; known keys go on', () => {
  const pool = Array.from({ length: 6 }, (_, i) => ({ name: `k${i}`, labels: [['i', String(i)]] as [string, string][] }));
  const body = (i: number) =>
    toBinary(seedPb.EventSchema, create(seedPb.EventSchema, { event: { case: 'metric', value: { name: pool[i]!.name, labels: Object.fromEntries(pool[i]!.labels), value: { case: 'counter', value: { value: 1n } } } } }));
  // Rounds over the six keys, 100 times: with a cap of 3, only k0..k2 are decoded.
  const bytes = Buffer.concat(Array.from({ length: 600 }, (_, i) => framed(body(i % 6))));
  const reader = new MetricReader({ maxKeys: 3 });
  const model = new SeriesModel({ histogram: () => new Values() });
  for (const piece of chunks(new Rng(baseSeed()), bytes)) {
    reader.push(piece);
    model.feed().drain(reader);
  }
  assert.equal(reader.keyCount, 3);
  assert.equal(reader.refusedFrames, 300);
  assert.deepEqual(
    [...model.series.values()].map((s) => [s.name, s.total]),
    [['k0', 100n], ['k1', 100n], ['k2', 100n]],
  );
  assert.equal(model.events, 300);
  assert.throws(() => new MetricReader({ maxKeys: 0 }), RangeError);
});

test('TcpClient.consume: a real exporter streamed through the reader; refused frames are counted on client.reader', async (t) => {
  // No self metrics: their keys would take the reader's two.
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').bufferSize(65_536).selfMetrics(false).build();
  t.after(() => recorder.close());
  const { port } = recorder.address as { port: number };
  const client = new TcpClient(`127.0.0.1:${port}`, { maxKeys: 2 });
  const model = new SeriesModel({ histogram: () => new Values() });
  const feed = model.feed();
  const done = client.consume((reader) => feed.drain(reader));
  assert.throws(() => client.consume(() => {}), TypeError);
  await waitFor('the client', () => recorder.stats().clients === 1);
  const counters = [0, 1, 2].map((i) => recorder.counter({ name: 'c', labels: { i: String(i) } }));
  for (let n = 0; n < 1000; n++) for (const c of counters) c.increment(2);
  await waitFor('every frame', () => model.events + client.reader.refusedFrames === 3000);
  await client.close();
  await done;
  assert.deepEqual([...model.series.values()].map((s) => s.total), [2000n, 2000n]);
  assert.equal(client.reader.refusedFrames, 1000);
});

test("TcpClient.consume: a reset on 'connect' is exact at the connection boundary", async (t) => {
  // Each connection gets 20 000 increments of 1 (many chunks), then the server ends it.
  const body = toBinary(seedPb.EventSchema, create(seedPb.EventSchema, { event: { case: 'metric', value: { name: 'jobs', value: { case: 'counter', value: { value: 1n } } } } }));
  const burst = Buffer.concat(Array.from({ length: 20_000 }, () => framed(body)));
  let connections = 0;
  const server = createServer((s) => {
    connections++;
    s.end(burst);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const { port } = server.address() as { port: number };
  const client = new TcpClient(`127.0.0.1:${port}`, { reconnect: { initialDelayMs: 10 } });
  const model = new SeriesModel({ histogram: () => new Values() });
  const feed = model.feed();
  const totals: bigint[] = [];
  client.on('connect', () => model.resetScope(''));
  client.on('disconnect', () => totals.push(model.seriesNamed('counter', 'jobs')[0]?.total ?? 0n));
  const done = client.consume((reader) => feed.drain(reader));
  await waitFor('three connections', () => totals.length >= 3);
  await client.close();
  await done;
  assert.ok(connections >= 3);
  assert.deepEqual(totals.slice(0, 3), [20_000n, 20_000n, 20_000n], 'each connection counted alone, whole');
});

// ---- Bytes: the limits a hostile or broken sender meets ----

/** A seed metric frame (with its length prefix) of counter `name` + `labels`, incremented by 1. */
const counterFrame = (name: string, labels: Record<string, string> = {}) =>
  framed(toBinary(seedPb.EventSchema, create(seedPb.EventSchema, { event: { case: 'metric', value: { name, labels, value: { case: 'counter', value: { value: 1n } } } } })));
const metadataFrame = (name: string, description: string) =>
  framed(toBinary(seedPb.EventSchema, create(seedPb.EventSchema, { event: { case: 'metadata', value: { name, metricType: 0, description: { case: 'descriptionValue', value: description } } } })));

/** What the reader says of a stream fed in random chunks: events, keys held, frames left out. */
function readAll(bytes: Uint8Array, options: ConstructorParameters<typeof MetricReader>[0] = {}) {
  const reader = new MetricReader(options);
  const events: ClientEvent[] = [];
  let pending = 0;
  for (const piece of chunks(new Rng(baseSeed()), bytes)) {
    reader.push(piece);
    while (reader.next() !== undefined) events.push(reader.event());
    pending = Math.max(pending, reader.pendingBytes);
  }
  return { reader, events, pending, tooLarge: reader.tooLargeFrames, refused: reader.refusedFrames, keyBytes: reader.keyBytes, keys: reader.keyCount };
}

test("MetricReader: a name, label or description over the exporter's limits (1024 / 4096, 64 labels) is skipped and counted, never kept", () => {
  const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`l${i}`, 'v']));
  const bytes = Buffer.concat([
    counterFrame('ok', { a: 'b' }),
    counterFrame('n'.repeat(1025)), // over by one character
    counterFrame('big', { a: 'v'.repeat(5_000_000) }), // 5 MB: refused by its size, never decoded
    counterFrame('wide', many),
    counterFrame('k', { ['x'.repeat(1025)]: '' }),
    counterFrame('cjk', { a: '字'.repeat(1024) }), // 1024 characters (3072 bytes): within the limit
    metadataFrame('ok', 'd'.repeat(4096)),
    metadataFrame('ok', 'd'.repeat(4097)),
    metadataFrame('m'.repeat(1025), ''),
    counterFrame('ok', { a: 'b' }),
  ]);
  const { events, tooLarge, keys } = readAll(bytes);
  assert.deepEqual(
    events.map((e) => (e.kind === 'metric' ? e.name : `metadata ${e.name} ${e.description?.length}`)),
    ['ok', 'cjk', 'metadata ok 4096', 'ok'],
  );
  assert.equal(tooLarge, 6);
  assert.equal(keys, 2);
});

test('MetricReader: maxKeyBytes bounds the bytes of the keys it holds; forgetKeys() gives them back', () => {
  const key = (i: number) => counterFrame('k', { i: `${i}`.padStart(100, '0') }); // ~110 bytes of key each
  const bytes = Buffer.concat(Array.from({ length: 30 }, (_, i) => key(i % 10)));
  const { reader, events, refused, keyBytes, keys } = readAll(bytes, { maxKeyBytes: 1000 });
  assert.ok(keys >= 8 && keys < 10, `${keys} keys`);
  assert.ok(keyBytes <= 1000, `${keyBytes} bytes`);
  assert.equal(events.length + refused, 30);
  assert.equal(refused, 3 * (10 - keys));
  reader.forgetKeys();
  assert.equal(reader.keyCount, 0);
  reader.push(key(9));
  assert.equal(reader.next(), 'metric', 'room again');
  assert.deepEqual(reader.key.labels, { i: '9'.padStart(100, '0') });
});

test('MetricReader with skipOversized: a frame over maxFrameBytes is skipped as it streams (nothing of it held), counted, and the stream goes on', () => {
  const bytes = Buffer.concat([counterFrame('a'), counterFrame('big', { v: 'x'.repeat(5000) }), counterFrame('b')]);
  const { events, tooLarge, pending } = readAll(bytes, { maxFrameBytes: 1000, skipOversized: true });
  assert.deepEqual(events.map((e) => (e as { name: string }).name), ['a', 'b']);
  assert.equal(tooLarge, 1);
  assert.ok(pending <= 1010, `${pending} bytes held`);
  // Without it, the same stream fails, as before; and a length no protobuf message can have fails either way.
  assert.throws(() => readAll(bytes, { maxFrameBytes: 1000 }), (err: ClientError) => err.code === 'FRAME_TOO_LARGE');
  const huge = Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x10); // 2^32
  assert.throws(() => readAll(huge, { maxFrameBytes: 1000, skipOversized: true }), (err: ClientError) => err.code === 'FRAME_TOO_LARGE');
});
