// The client library: frame splitting, decoding both protocols, and TcpClient over real sockets.
import { create, type MessageInitShape } from '@bufbuild/protobuf';
import { sizeDelimitedEncode } from '@bufbuild/protobuf/wire';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import * as seed from '../src/gen/event_pb.js';
import * as observer from '../src/gen/observer_event_pb.js';
import { ClientError, FrameDecoder, TcpClient, detectProtocol, toClientEvent, type ClientEvent, type MetricOp } from '../src/client/index.js';

function varint(n: bigint): number[] {
  const out: number[] = [];
  while (n >= 0x80n) {
    out.push(Number(n & 0x7fn) | 0x80);
    n >>= 7n;
  }
  out.push(Number(n));
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

function body(n: number, seedByte: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 31 + seedByte) & 0xff);
}

// Bodies around the varint boundaries: 0, 127 and 128 bytes, and one of 300 (a 2-byte prefix).
const bodies = [body(3, 1), body(0, 0), body(300, 7), body(127, 2), body(128, 3), body(1, 9), body(0, 0)];
const stream = concat(bodies.flatMap((b) => [Uint8Array.from(varint(BigInt(b.length))), b]));

function decodeAll(chunks: Uint8Array[]): Uint8Array[] {
  const d = new FrameDecoder();
  const frames = chunks.flatMap((c) => d.push(c));
  assert.equal(d.pendingBytes, 0);
  return frames;
}

test('FrameDecoder: the stream cut at every offset, and byte by byte, gives the same frames', () => {
  assert.deepEqual([...stream.subarray(5, 7)], [0xac, 0x02]); // the 300-byte frame's 2-byte prefix
  assert.deepEqual(decodeAll([stream]), bodies);
  for (let cut = 0; cut <= stream.length; cut++) {
    assert.deepEqual(decodeAll([stream.subarray(0, cut), stream.subarray(cut)]), bodies, `cut at ${cut}`);
  }
  assert.deepEqual(decodeAll(Array.from(stream, (b) => Uint8Array.of(b))), bodies);
  assert.deepEqual(decodeAll([stream, stream, new Uint8Array(0)]), [...bodies, ...bodies]);
});

test('FrameDecoder: a frame larger than a chunk is assembled; a frame within a chunk is not copied', () => {
  const big = body(100_000, 5);
  const wire = concat([Uint8Array.from(varint(100_000n)), big, Uint8Array.of(1, 42)]);
  const d = new FrameDecoder();
  const frames: Uint8Array[] = [];
  for (let i = 0; i < wire.length; i += 1000) frames.push(...d.push(wire.subarray(i, i + 1000)));
  assert.deepEqual(frames, [big, Uint8Array.of(42)]);
  const chunk = Uint8Array.of(2, 7, 8);
  const [view] = new FrameDecoder().push(chunk);
  assert.equal(view!.buffer, chunk.buffer);
});

test('FrameDecoder: absurd or overlong length prefixes are refused before anything is buffered', () => {
  const code = (bytes: number[], max?: number) => {
    const d = new FrameDecoder(max);
    try {
      for (const b of bytes) d.push(Uint8Array.of(b));
    } catch (err) {
      assert.ok(err instanceof ClientError);
      assert.ok(d.pendingBytes <= d.maxFrameBytes + 10);
      assert.throws(() => d.push(Uint8Array.of(0)), err, 'the failure sticks');
      return err.code;
    }
    return undefined;
  };
  assert.equal(code([...varint(2n ** 40n), 1, 2, 3]), 'FRAME_TOO_LARGE');
  assert.equal(code([...varint(2n ** 64n - 1n)]), 'FRAME_TOO_LARGE');
  assert.equal(code([...varint(16n * 1024n * 1024n + 1n)]), 'FRAME_TOO_LARGE');
  assert.equal(code([...varint(1001n)], 1000), 'FRAME_TOO_LARGE');
  assert.equal(code([...varint(1000n)], 1000), undefined);
  assert.equal(code([...Array(10).fill(0x80), 0x00]), 'BAD_LENGTH'); // 11 bytes, though the value is 0
  assert.equal(code([...Array(9).fill(0x80), 0x00]), undefined); // 10 bytes is a valid (padded) 0
  assert.throws(() => new FrameDecoder(0), RangeError);
});

// Every op of both protocols, hand-made with the generated schemas, and what the client must yield.
const ts = { seconds: 1_700_000_000n, nanos: 123_456_789 };
const labels = { service: 'api', 'é': 'ž' };

type MetadataInit = {
  name: string;
  metricType: 0 | 1 | 2;
  unit?: { case: 'unitValue'; value: string };
  description?: { case: 'descriptionValue'; value: string };
};
const metadataCases: [MetadataInit, ClientEvent][] = [
  [
    { name: 'requests', metricType: 0, unit: { case: 'unitValue', value: 'count' }, description: { case: 'descriptionValue', value: 'Total requests' } },
    { kind: 'metadata', name: 'requests', metricKind: 'counter', unit: 'count', description: 'Total requests' },
  ],
  [{ name: 'depth', metricType: 1 }, { kind: 'metadata', name: 'depth', metricKind: 'gauge' }],
  [
    { name: 'latency', metricType: 2, unit: { case: 'unitValue', value: 'seconds' } },
    { kind: 'metadata', name: 'latency', metricKind: 'histogram', unit: 'seconds' },
  ],
];

function seedMetric(value: MessageInitShape<typeof seed.MetricSchema>['value'], timestamp = true): seed.Event {
  return create(seed.EventSchema, { event: { case: 'metric', value: { name: 'm', labels, ...(timestamp ? { timestamp: ts } : {}), value } } });
}

const seedCases: [seed.Event, ClientEvent][] = [
  ...metadataCases.map(([m, c]): [seed.Event, ClientEvent] => [create(seed.EventSchema, { event: { case: 'metadata', value: m } }), c]),
  [seedMetric({ case: 'counter', value: { value: 2n ** 64n - 1n } }), metric({ type: 'counterIncrement', value: 2n ** 64n - 1n })],
  [seedMetric({ case: 'counter', value: { value: 0n } }, false), metric({ type: 'counterIncrement', value: 0n }, false)],
  [seedMetric({ case: 'gauge', value: { value: { case: 'absolute', value: -1.5 } } }), metric({ type: 'gaugeSet', value: -1.5 })],
  [seedMetric({ case: 'gauge', value: { value: { case: 'increment', value: 0 } } }), metric({ type: 'gaugeIncrement', value: 0 })],
  [seedMetric({ case: 'gauge', value: { value: { case: 'decrement', value: 1e300 } } }), metric({ type: 'gaugeDecrement', value: 1e300 })],
  [seedMetric({ case: 'histogram', value: { value: 0.25 } }), metric({ type: 'histogramRecord', value: 0.25 })],
];

function observerMetric(operation: observer.Metric['operation']): observer.Event {
  return create(observer.EventSchema, { event: { case: 'metric', value: { name: 'm', labels, timestamp: ts, operation } } });
}

const observerCases: [observer.Event, ClientEvent][] = [
  ...metadataCases.map(([m, c]): [observer.Event, ClientEvent] => [create(observer.EventSchema, { event: { case: 'metadata', value: m } }), c]),
  [observerMetric({ case: 'incrementCounter', value: 7n }), metric({ type: 'counterIncrement', value: 7n })],
  [observerMetric({ case: 'setCounter', value: 2n ** 64n - 1n }), metric({ type: 'counterSet', value: 2n ** 64n - 1n })],
  [observerMetric({ case: 'setGauge', value: 42 }), metric({ type: 'gaugeSet', value: 42 })],
  [observerMetric({ case: 'incrementGauge', value: 0.5 }), metric({ type: 'gaugeIncrement', value: 0.5 })],
  [observerMetric({ case: 'decrementGauge', value: -0 }), metric({ type: 'gaugeDecrement', value: -0 })],
  [observerMetric({ case: 'recordHistogram', value: Number.POSITIVE_INFINITY }), metric({ type: 'histogramRecord', value: Number.POSITIVE_INFINITY })],
];

function metric(op: MetricOp, timestamp = true): ClientEvent {
  return { kind: 'metric', name: 'm', labels, ...(timestamp ? { timestamp: ts } : {}), op };
}

const seedWire = concat(seedCases.map(([e]) => sizeDelimitedEncode(seed.EventSchema, e)));
const observerWire = concat(observerCases.map(([e]) => sizeDelimitedEncode(observer.EventSchema, e)));

test('toClientEvent: malformed frames are DECODE errors', () => {
  const decode = (frame: Uint8Array, protocol: 'seed' | 'observer-0.11' = 'seed') =>
    assert.throws(() => toClientEvent(frame, protocol), (err) => err instanceof ClientError && err.code === 'DECODE');
  decode(new Uint8Array(0)); // neither metadata nor metric
  decode(Uint8Array.of(0xff, 0xff)); // not protobuf
  decode(Uint8Array.of(0x12, 0x02, 0x20, 0x05)); // an observer metric read as seed
  decode(new Uint8Array(0), 'observer-0.11');
  decode(Uint8Array.of(0x0a, 0x02, 0x10, 0x07)); // metric type 7
  decode(sizeDelimitedEncode(seed.EventSchema, seedMetric({ case: undefined })).subarray(1)); // a metric without a value
  decode(sizeDelimitedEncode(seed.EventSchema, seedMetric({ case: 'gauge', value: { value: { case: undefined } } })).subarray(1));
  decode(sizeDelimitedEncode(observer.EventSchema, observerMetric({ case: undefined })).subarray(1), 'observer-0.11');
});

test('detectProtocol tells the two formats apart by the value field, and leaves metadata undecided', async () => {
  const { FrameEncoder, GaugeOp } = await import('../src/worker/encoder.js');
  const { KeyTable } = await import('../src/worker/keys.js');
  const { encodeMetadata } = await import('../src/worker/metadata.js');
  const key = new KeyTable().entry('k', 'requests', [['a', '1']]);
  for (const protocol of ['seed', 'observer-0.11'] as const) {
    const enc = new FrameEncoder(protocol);
    enc.begin();
    enc.counter(key, 3, 0);
    enc.gauge(key, GaugeOp.Decrement, 1.5);
    enc.histogram(key, 0);
    const chunk = enc.finish()!;
    let start = 0;
    for (const end of chunk.ends) {
      const framed = chunk.bytes.subarray(start, end);
      start = end;
      assert.equal(detectProtocol(framed.subarray(1)), protocol); // skip the 1-byte length prefix
    }
  }
  assert.equal(detectProtocol(encodeMetadata('requests', 'counter', 'count').subarray(1)), undefined);
});

/** A loopback (or unix socket) server; `cleanup()` destroys its connections and closes it. */
async function serve(onConnection: (s: Socket) => void, listen: number | string = 0) {
  const sockets = new Set<Socket>();
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    s.setNoDelay(true);
    onConnection(s);
  });
  await listenOn(server, listen);
  const address = typeof listen === 'string' ? listen : `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    server,
    address,
    sockets,
    cleanup: async () => {
      for (const s of sockets) s.destroy();
      if (server.listening) await new Promise((r) => server.close(r));
    },
  };
}

function listenOn(server: Server, listen: number | string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      server.off('error', reject);
      resolve();
    };
    if (typeof listen === 'string') server.listen(listen, done);
    else server.listen(listen, '127.0.0.1', done);
  });
}

/** Writes `bytes` in pieces of 1, 2, 3, 5, 8, 13 … bytes, pausing now and then so reads split too. */
async function writeOddly(s: Socket, bytes: Uint8Array): Promise<void> {
  const sizes = [1, 2, 3, 5, 8, 13, 21, 34, 1, 1, 55, 89];
  for (let pos = 0, i = 0; pos < bytes.length; i++) {
    const n = sizes[i % sizes.length]!;
    s.write(bytes.subarray(pos, pos + n));
    pos += n;
    if (i % 3 === 0) await new Promise((r) => setTimeout(r, 1));
  }
}

async function collect(client: TcpClient): Promise<ClientEvent[]> {
  const out: ClientEvent[] = [];
  for await (const e of client) out.push(e);
  return out;
}

for (const [protocol, wire, cases] of [
  ['seed', seedWire, seedCases],
  ['observer-0.11', observerWire, observerCases],
] as const) {
  test(`TcpClient (${protocol}): every op arrives typed, whatever the write boundaries`, async () => {
    const srv = await serve((s) => void writeOddly(s, wire).then(() => s.end()));
    const client = new TcpClient(srv.address, { protocol });
    const seen: string[] = [];
    client.on('connect', () => seen.push('connect'));
    client.on('disconnect', (err) => seen.push(`disconnect ${err}`));
    try {
      assert.deepEqual(await collect(client), cases.map(([, c]) => c));
      assert.deepEqual(seen, ['connect', 'disconnect undefined']);
    } finally {
      await client.close();
      await srv.cleanup();
    }
  });
}

test('TcpClient: garbage closes the socket and iteration rejects with the ClientError', async () => {
  for (const [garbage, code] of [
    [Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff), 'FRAME_TOO_LARGE'],
    [Uint8Array.of(...Array(11).fill(0x80), 0), 'BAD_LENGTH'],
    [Uint8Array.of(4, 0xff, 0xff, 0xff, 0xff), 'DECODE'],
  ] as const) {
    let serverSide: Socket | undefined;
    const srv = await serve((s) => {
      serverSide = s;
      s.write(concat([sizeDelimitedEncode(seed.EventSchema, seedCases[0]![0]), garbage])); // and stays open
    });
    const client = new TcpClient(srv.address, { reconnect: true }); // a malformed stream is not retried
    try {
      const [err] = await once(client, 'error'); // emitted once the client closed the socket, before anyone iterates
      assert.ok(err instanceof ClientError && err.code === code, String(err));
      await waitUntil(() => serverSide!.closed);
      const got: ClientEvent[] = [];
      await assert.rejects(
        (async () => {
          for await (const e of client) got.push(e);
        })(),
        err,
      );
      assert.deepEqual(got, [seedCases[0]![1]], 'the frame before the garbage is delivered');
    } finally {
      await client.close();
      await srv.cleanup();
    }
  }
});

test('TcpClient: a connection ending inside a frame, or refused, rejects with CONNECT', async () => {
  const frame = sizeDelimitedEncode(seed.EventSchema, seedCases[0]![0]);
  const srv = await serve((s) => s.end(frame.subarray(0, frame.length - 1)));
  const client = new TcpClient(srv.address);
  try {
    await assert.rejects(collect(client), (err) => err instanceof ClientError && err.code === 'CONNECT' && /inside a frame/.test(err.message));
  } finally {
    await client.close();
    await srv.cleanup();
  }
  // The port is free again: nothing listens.
  const refused = new TcpClient(srv.address);
  await assert.rejects(collect(refused), (err) => err instanceof ClientError && err.code === 'CONNECT' && err.cause !== undefined);
});

test('TcpClient: reconnects and goes on with the next connection', async () => {
  const [first, second] = [seedCases.slice(0, 3), seedCases.slice(3)];
  const encode = (cs: typeof seedCases) => concat(cs.map(([e]) => sizeDelimitedEncode(seed.EventSchema, e)));
  // The first server sends, then goes away; a second one comes up on the same port later.
  const srv1 = await serve((s) => {
    void srv1.server.close();
    s.end(encode(first));
  });
  const port = Number(srv1.address.split(':')[1]);
  const client = new TcpClient({ host: '127.0.0.1', port }, { reconnect: { initialDelayMs: 20 } });
  const seen: string[] = [];
  client.on('connect', () => seen.push('connect'));
  client.on('disconnect', (err) => seen.push(err === undefined ? 'end' : err.code));
  let srv2: Awaited<ReturnType<typeof serve>> | undefined;
  try {
    const got: ClientEvent[] = [];
    for await (const e of client) {
      got.push(e);
      if (got.length === first.length) {
        // Let a few attempts be refused before listening again.
        await new Promise((r) => setTimeout(r, 150));
        srv2 = await serve((s) => void writeOddly(s, encode(second)), port);
      }
      if (got.length === seedCases.length) break;
    }
    assert.deepEqual(got, seedCases.map(([, c]) => c));
    // Leaving the loop closed the client: the last 'end'.
    assert.match(seen.join(), /^connect,end,(CONNECT,)+connect,end$/);
  } finally {
    await client.close();
    await srv1.cleanup();
    await srv2?.cleanup();
  }
});

test('TcpClient: a unix socket path works', { skip: process.platform === 'win32' }, async () => {
  const path = join(tmpdir(), `mtcp-client-${process.pid}.sock`);
  rmSync(path, { force: true });
  const srv = await serve((s) => s.end(seedWire), path);
  const client = new TcpClient(path);
  try {
    assert.deepEqual(await collect(client), seedCases.map(([, c]) => c));
  } finally {
    await client.close();
    await srv.cleanup();
    rmSync(path, { force: true });
  }
});

test('TcpClient: close() ends a waiting iteration, is idempotent, and await using closes', async () => {
  const srv = await serve(() => {}); // connects, never sends
  try {
    const client = new TcpClient(srv.address);
    await once(client, 'connect');
    const iteration = collect(client);
    await new Promise((r) => setTimeout(r, 10));
    const [a, b] = [client.close(), client.close()];
    await Promise.all([a, b]);
    assert.deepEqual(await iteration, []);
    // Closed while waiting to retry.
    const retrying = new TcpClient('127.0.0.1:1', { reconnect: { initialDelayMs: 60_000 } });
    await once(retrying, 'disconnect');
    await retrying.close();
    assert.deepEqual(await collect(retrying), []);
    {
      await using disposable = new TcpClient(srv.address);
      await once(disposable, 'connect');
    }
    await waitUntil(() => srv.sockets.size === 0);
  } finally {
    await srv.cleanup();
  }
});

test('TcpClient: a slow consumer pauses the socket instead of buffering everything', async () => {
  const frame = sizeDelimitedEncode(seed.EventSchema, seedMetric({ case: 'histogram', value: { value: 1 } }));
  const count = 50_000;
  const srv = await serve((s) => s.end(Buffer.concat(Array.from({ length: count }, () => frame))));
  const client = new TcpClient(srv.address);
  // White-box: the queue and socket are private.
  const internals = client as unknown as { queue: unknown[]; head: number; socket: Socket | undefined };
  try {
    await once(client, 'connect');
    await waitUntil(() => internals.socket?.isPaused() === true); // nobody reads
    await new Promise((r) => setTimeout(r, 100));
    const waiting = internals.queue.length - internals.head;
    assert.ok(waiting > 10_000 && waiting < 10_000 + 65536 / frame.length, `${waiting} events waiting`);
    let n = 0;
    for await (const e of client) {
      assert.equal(e.kind, 'metric');
      n++;
    }
    assert.equal(n, count);
  } finally {
    await client.close();
    await srv.cleanup();
  }
});

test('TcpClient: bad addresses and options throw at once', () => {
  for (const a of ['localhost', 'host:0', 'host:99999', '::1:80', '', { host: '', port: 1 }, { path: '' }]) {
    assert.throws(() => new TcpClient(a as string), TypeError, JSON.stringify(a));
  }
  assert.throws(() => new TcpClient('127.0.0.1:1', { protocol: 'x' as 'seed' }), TypeError);
  assert.throws(() => new TcpClient('127.0.0.1:1', { reconnect: { initialDelayMs: 10, maxDelayMs: 5 } }), RangeError);
  assert.throws(() => new TcpClient('127.0.0.1:1', { maxFrameBytes: -1 }), RangeError);
});

async function waitUntil(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 5));
  }
}
