// The worker's drain loop on its own, with a transport that records what it is given.
import { fromBinary } from '@bufbuild/protobuf';
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { test } from 'node:test';
import { CTL_BYTES, Op, RingSlot, Stat, createRing, recordHeader, ringViews } from '../src/shared/layout.js';
import { StatsBlock } from '../src/shared/stats-block.js';
import type { ControlMessage } from '../src/shared/messages.js';
import type { Chunk } from '../src/worker/encoder.js';
import { KeyTable } from '../src/worker/keys.js';
import { MAIN_RING, RingReader } from '../src/worker/ring-reader.js';
import { Counters } from '../src/worker/stats.js';
import type { Transport } from '../src/worker/transport/server.js';
import { EventSchema } from '../src/gen/event_pb.js';
import { splitFrames } from './helpers.js';
import { pipelineOver } from './pipeline-parts.js';

/** What the pipeline handed to the transport, in order: 'm' per metric frame, 'd' per metadata frame. */
function recordingTransport(log: string[]): Transport {
  const fake = {
    clientCount: 1,
    broadcast: (chunk: Chunk) => log.push(...Array.from(chunk.ends, () => 'm')),
    broadcastMetadata: () => log.push('d'),
    lose: () => {},
    cork: () => {},
    uncork: () => {},
  };
  return fake as unknown as Transport;
}

test('a burst of registrations does not hold back the records of other rings', () => {
  const ctl = new SharedArrayBuffer(CTL_BYTES);
  const log: string[] = [];
  const main = createRing(1024);
  const { port1, port2 } = new MessageChannel();
  const registrations = 5000;
  for (let i = 0; i < registrations; i++) {
    const m: ControlMessage = { t: 'meta', pos: 0, seq: i, name: `n${i}`, kind: 'counter', unit: undefined, description: undefined };
    port1.postMessage(m);
  }
  Atomics.store(ringViews(main.sab).header, RingSlot.ControlSent, registrations);
  const pipeline = pipelineOver(ctl, new RingReader(main, port2, 0, MAIN_RING), recordingTransport(log));
  // Another thread's ring, announced, with a key and 100 records.
  const other = createRing(1024);
  const { header, f64 } = ringViews(other.sab);
  pipeline.onChannel({ t: 'attach', ring: 1, desc: other});
  pipeline.onChannel({ t: 'key', ring: 1, pos: 0, seq: 0, id: 0, canonical: 'k', name: 'k', labels: [] });
  Atomics.store(header, RingSlot.ControlSent, 1);
  for (let i = 0; i < 100; i++) {
    f64[i * 2 + 1] = i;
    f64[i * 2] = recordHeader(0, Op.GaugeSet);
  }
  Atomics.store(header, RingSlot.Tail, 100);

  pipeline.round();
  const firstRound = log.filter((x) => x === 'd').length;
  assert.ok(firstRound < registrations / 4, `the first round applied ${firstRound} registrations, not all of them`);
  assert.equal(log.filter((x) => x === 'm').length, 100, 'and the other ring was drained in that round');
  while (pipeline.round() > 0);
  assert.equal(log.filter((x) => x === 'd').length, registrations, 'every registration, over later rounds');
  port1.close();
  port2.close();
});

test('a round ends when its batch of frames fills half a slab: long frames are sent over several rounds, every one of them', () => {
  const ctl = new SharedArrayBuffer(CTL_BYTES);
  const sizes: number[] = [];
  const frames: number[] = [];
  const transport = {
    ...recordingTransport([]),
    broadcast: (chunk: Chunk) => {
      sizes.push(chunk.bytes.length);
      frames.push(chunk.ends.length);
    },
  } as unknown as Transport;
  const ring = createRing(4096);
  const reader = new RingReader(ring, undefined, 0, MAIN_RING);
  const keys = new KeyTable();
  // About 350 bytes a frame: 4096 of them are 1.4 MB, more than a 1 MiB encoding slab.
  reader.keys[0] = keys.entry('long', 'requests', [
    ['pod', 'p'.repeat(100)],
    ['route', 'r'.repeat(100)],
    ['zone', 'z'.repeat(100)],
  ]);
  const pipeline = pipelineOver(ctl, reader, transport, { keys });
  const { header, f64 } = ringViews(ring.sab);
  const n = 4096;
  for (let i = 0; i < n; i++) {
    f64[i * 2 + 1] = i;
    f64[i * 2] = recordHeader(0, Op.GaugeSet);
  }
  Atomics.store(header, RingSlot.Tail, n);
  let rounds = 0;
  while (pipeline.round() > 0) rounds++;
  assert.equal(frames.reduce((a, b) => a + b, 0), n, 'every record was sent');
  assert.ok(rounds >= 3, `1.4 MB of frames took ${rounds} rounds`);
  for (const bytes of sizes) assert.ok(bytes <= 512 * 1024 + 400, `a round's chunk is at most half a slab and a frame (${bytes} bytes)`);
});

test("stats() counts a round's records before any client is sent them", () => {
  // A client that reads stats() on seeing frames must find them counted: the worker publishes its
  // figures before the round's writes, not after (seen under load as recorded 0 beside 15 frames).
  const ctl = new SharedArrayBuffer(CTL_BYTES);
  const block = new StatsBlock(ctl);
  const atWrite: number[] = [];
  const transport = { ...recordingTransport([]), uncork: () => atWrite.push(block.read()[Stat.Recorded]!) } as unknown as Transport;
  const ring = createRing(1024);
  const reader = new RingReader(ring, undefined, 0, MAIN_RING);
  const keys = new KeyTable();
  reader.keys[0] = keys.entry('k', 'k', []);
  const counters = new Counters(block);
  const pipeline = pipelineOver(ctl, reader, transport, { keys, counters });
  const { header, f64 } = ringViews(ring.sab);
  for (let i = 0; i < 10; i++) {
    f64[i * 2 + 1] = 1;
    f64[i * 2] = recordHeader(0, Op.Counter);
  }
  Atomics.store(header, RingSlot.Tail, 10);
  // As the worker runs a round: its changes held, published once.
  counters.hold();
  pipeline.round();
  counters.release();
  assert.deepEqual(atWrite, [10]);
});

test('counter increments given as numbers: exact on both sides of 2^32, -0 as 0, invalid ones dropped', () => {
  const ctl = new SharedArrayBuffer(CTL_BYTES);
  const sent: Uint8Array[] = [];
  const transport = { ...recordingTransport([]), broadcast: (chunk: Chunk) => sent.push(chunk.bytes.slice()) } as unknown as Transport;
  const ring = createRing(64);
  const reader = new RingReader(ring, undefined, 0, MAIN_RING);
  const keys = new KeyTable();
  reader.keys[0] = keys.entry('n', 'n', []);
  const pipeline = pipelineOver(ctl, reader, transport, { keys });
  const valid = [1, 127, 128, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1, 0, -0];
  const invalid = [-1, 1.5, 2 ** 53, Number.NaN, Number.POSITIVE_INFINITY, -(2 ** 32)];
  const values = [...valid, ...invalid];
  const { header, f64 } = ringViews(ring.sab);
  values.forEach((v, i) => {
    f64[i * 2 + 1] = v;
    f64[i * 2] = recordHeader(0, Op.Counter);
  });
  Atomics.store(header, RingSlot.Tail, values.length);
  pipeline.round();
  const got = sent.flatMap((b) => splitFrames(b).frames).map((f) => {
    const e = fromBinary(EventSchema, f);
    assert.equal(e.event.case, 'metric');
    const m = e.event.value!;
    return m.value.case === 'counter' ? m.value.value.value : undefined;
  });
  assert.deepEqual(got, valid.map((v) => BigInt(v)));
});

test('past 2^31 records, a key announcement still in flight still holds back its records', () => {
  // Ring positions run free and wrap at 2^32. The check that stops before a control message not
  // yet received compared the last one received with the head as a signed distance: once 2^31
  // records had passed since it (36 minutes of one thread at 1 M records/s), it read as ahead,
  // and the new key's records were drained before their key was known and counted invalid.
  const ctl = new SharedArrayBuffer(CTL_BYTES);
  const log: string[] = [];
  const ring = createRing(64);
  const { header, f64, mask } = ringViews(ring.sab);
  const pipeline = pipelineOver(ctl, new RingReader(createRing(64), undefined, 0, MAIN_RING), recordingTransport(log));
  const write = (pos: number, id: number): void => {
    const i = (pos & mask) * 2;
    f64[i + 1] = 1;
    f64[i] = recordHeader(id, Op.Counter);
  };
  pipeline.onChannel({ t: 'attach', ring: 7, desc: ring});
  pipeline.onChannel({ t: 'key', ring: 7, pos: 0, seq: 0, id: 0, canonical: 'a', name: 'a', labels: [] });
  Atomics.store(header, RingSlot.ControlSent, 1);
  for (let p = 0; p < 10; p++) write(p, 0);
  Atomics.store(header, RingSlot.Tail, 10);
  pipeline.round();
  assert.equal(log.length, 10);

  // 2^31 + 100 records later (the positions are set as they would be then), a new key is
  // announced: its message is on its way, its records are already published.
  const at = (10 + 2 ** 31 + 100) | 0;
  Atomics.store(header, RingSlot.Head, at);
  Atomics.store(header, RingSlot.Tail, at);
  const reader = (pipeline as unknown as { attached: Map<number, RingReader> }).attached.get(7)!;
  reader.head = at;
  Atomics.store(header, RingSlot.ControlSent, 2);
  for (let k = 0; k < 10; k++) write((at + k) | 0, 1);
  Atomics.store(header, RingSlot.Tail, (at + 10) | 0);
  pipeline.round();
  assert.equal(new StatsBlock(ctl).read()[Stat.Invalid], 0, 'none counted invalid');
  assert.equal(log.length, 10, 'nothing drained past the key still in flight');
  pipeline.onChannel({ t: 'key', ring: 7, pos: at, seq: 1, id: 1, canonical: 'b', name: 'b', labels: [] });
  pipeline.round();
  assert.equal(log.length, 20, 'its records, once it has come');
});
