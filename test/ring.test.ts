// The ring on its own, producer and consumer in one thread: limits, drops, wrap-around of the
// free-running 32-bit positions, and control messages ordered with records.
import assert from 'node:assert/strict';
import { MessageChannel } from 'node:worker_threads';
import { test } from 'node:test';
import { RingWriter } from '../src/app/ring-writer.js';
import { CTL_BYTES, Ctl, Op, RingSlot, createRing, recordHeader, ringViews } from '../src/shared/layout.js';
import type { ControlMessage } from '../src/shared/messages.js';
import { MAIN_RING, RingReader } from '../src/worker/ring-reader.js';

/** A ring's two ends; `perTurn` as on the main thread (see RingWriter) unless said. */
function pair(limit: number, perTurn = true, start = 0) {
  const ring = createRing(limit);
  const header = ringViews(ring.sab).header;
  header[RingSlot.Head] = start;
  header[RingSlot.Tail] = start;
  const ctl = new SharedArrayBuffer(CTL_BYTES);
  new Int32Array(ctl)[Ctl.Clients] = 1;
  const { port1, port2 } = new MessageChannel();
  const writer = new RingWriter(ring, ctl, perTurn);
  writer.rebind(port1);
  const reader = new RingReader(ring, port2, 0, MAIN_RING);
  const close = () => {
    port1.close();
    port2.close();
  };
  return { writer, reader, close };
}

/** Takes everything published, in order, with control messages where they belong. */
function drain(reader: RingReader): (number | string)[] {
  const out: (number | string)[] = [];
  const tail = reader.limit();
  const { f64, mask } = reader.views;
  let h = reader.head;
  const controls = () => {
    for (let m = reader.controlDue(h); m !== undefined; m = reader.controlDue(h)) out.push(m.t === 'meta' ? `meta:${m.name}` : `key:${m.id}`);
  };
  while (h !== tail) {
    controls();
    const i = (h & mask) * 2;
    assert.equal(f64[i]! >>> 24, Op.Histogram);
    out.push(f64[i + 1]!);
    h = (h + 1) | 0;
  }
  controls();
  reader.advance(h);
  reader.persist(h, reader.fullSeen);
  return out;
}

test('a full ring drops new records and counts them; the consumer frees room', () => {
  const { writer, reader, close } = pair(100);
  for (let i = 0; i < 130; i++) writer.push(recordHeader(0, Op.Histogram), i);
  writer.publish();
  assert.equal(reader.takeFullDrops(), 30);
  assert.deepEqual(drain(reader), Array.from({ length: 100 }, (_, i) => i));
  for (let i = 0; i < 10; i++) writer.push(recordHeader(0, Op.Histogram), 1000 + i);
  writer.publish();
  assert.deepEqual(drain(reader), Array.from({ length: 10 }, (_, i) => 1000 + i));
  assert.equal(reader.takeFullDrops(), 0);
  close();
});

test('positions wrap past 2^31 and 2^32 without losing or repeating a record', () => {
  for (const start of [0x7ffffff0, -20]) {
    const { writer, reader, close } = pair(16, true, start);
    const got: (number | string)[] = [];
    for (let i = 0; i < 200; i++) {
      writer.push(recordHeader(0, Op.Histogram), i);
      if (i % 7 === 6) {
        writer.publish();
        got.push(...drain(reader));
      }
    }
    writer.publish();
    got.push(...drain(reader));
    assert.deepEqual(got, Array.from({ length: 200 }, (_, i) => i), `start ${start}`);
    close();
  }
});

test('records are published in batches and, on the main thread, a burst tail once per turn of the event loop', async () => {
  const { writer, reader, close } = pair(1024, true);
  for (let i = 0; i < 70; i++) writer.push(recordHeader(0, Op.Histogram), i);
  assert.equal(Atomics.load(reader.views.header, RingSlot.Tail), 64, 'the first 64 are published at once');
  assert.equal(writer.unpublished(), 6);
  await Promise.resolve();
  // Not after each job: a server would pay a microtask per request.
  assert.equal(writer.unpublished(), 6, 'the end of a job does not publish');
  for (let i = 70; i < 72; i++) writer.push(recordHeader(0, Op.Histogram), i); // a second job in the same turn
  await new Promise((r) => setImmediate(r));
  assert.equal(Atomics.load(reader.views.header, RingSlot.Tail), 72, 'the rest by the end of the turn');
  assert.equal(writer.unpublished(), 0);
  close();
});

test('on other threads, a burst tail is published at the end of the job (pools that block in Atomics.wait run microtasks)', async () => {
  const { writer, reader, close } = pair(1024, false);
  for (let i = 0; i < 70; i++) writer.push(recordHeader(0, Op.Histogram), i);
  assert.equal(writer.unpublished(), 6);
  await Promise.resolve();
  assert.equal(Atomics.load(reader.views.header, RingSlot.Tail), 70, 'the rest by the end of the job');
  close();
});

test('a control message lands between the records written before and after it', () => {
  const { writer, reader, close } = pair(64);
  writer.push(recordHeader(0, Op.Histogram), 1);
  writer.push(recordHeader(0, Op.Histogram), 2);
  const meta: ControlMessage = { t: 'meta', pos: 0, seq: 0, name: 'm', kind: 'histogram', unit: undefined, description: undefined };
  writer.control(meta);
  writer.push(recordHeader(0, Op.Histogram), 3);
  writer.publish();
  assert.deepEqual(drain(reader), [1, 2, 'meta:m', 3]);
  close();
});

test('drops are counted from the ring\'s creation, and a restarted worker counts only the rest', () => {
  const ring = createRing(8);
  const ctl = new SharedArrayBuffer(CTL_BYTES);
  new Int32Array(ctl)[Ctl.Clients] = 1;
  const writer = new RingWriter(ring, ctl);
  for (let i = 0; i < 20; i++) writer.push(recordHeader(0, Op.Histogram), i); // no reader yet: 12 dropped
  const first = new RingReader(ring, undefined, 0, MAIN_RING);
  assert.equal(first.takeFullDrops(), 12, 'drops made before any worker saw the ring');
  first.persist(first.head, first.fullSeen); // committed
  for (let i = 0; i < 5; i++) writer.push(recordHeader(0, Op.Histogram), i);
  // The worker dies before taking these 5; its successor reads the ring afresh.
  const second = new RingReader(ring, undefined, 0, MAIN_RING);
  assert.equal(second.takeFullDrops(), 5);
  assert.equal(second.takeFullDrops(), 0);
});

test('a dead producer\'s unpublished records are adopted; emptied slots of earlier laps are not', () => {
  const { writer, reader, close } = pair(16); // published every 4 records
  const lap = (n: number) => {
    for (let i = 0; i < n; i++) writer.push(recordHeader(0, Op.Histogram), i);
    writer.publish();
    return drain(reader).length;
  };
  assert.equal(lap(16), 16);
  assert.equal(lap(13), 13); // positions 16–28; slots 13–15 still hold the first lap's records, emptied
  writer.push(recordHeader(0, Op.Histogram), 100); // positions 29 and 30, never published: the thread got stuck
  writer.push(recordHeader(0, Op.Histogram), 101);
  assert.equal(writer.unpublished(), 2);
  assert.equal(reader.adoptUnpublished(), 2, 'the two, and not slot 15 of the first lap');
  assert.deepEqual(drain(reader), [100, 101]);
  assert.equal(reader.adoptUnpublished(), 0);
  close();
});
