// Issue "Tune the buffer size from production": with self metrics on, every client is told how
// full the rings and its own queue got (gauges in the stream), so that a buffer size can be chosen
// from real traffic. Bursts of known size go into rings of known size while the worker waits out
// a long flush interval (it is woken early only at a quarter of the ring), so the ring's true peak
// is the burst itself; the reported peak must be within the stated bound of it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { recommendBufferSize } from '../src/client/index.js';
import { fromBinary } from '@bufbuild/protobuf';
import { EventSchema, type Event } from '../src/gen/event_pb.js';
import type { TcpRecorder } from '../src/index.js';
import { NO_PROTOC, TestClient, isFillLevel, isFillLevelFrame, protoc, protocDecode, startThread, waitFor, withClient } from './helpers.js';

/** The stated bound: a peak may miss records written and not yet published (fewer than 64). */
const UNPUBLISHED = 63;

interface Level {
  name: string;
  thread?: string;
  value: number;
  /** The frame's timestamp, ms since the epoch. */
  at: number;
}

/** The fill-level values a client got, in order. */
function levels(events: Event[]): Level[] {
  const out: Level[] = [];
  for (const e of events) {
    if (e.event.case !== 'metric' || !isFillLevel(e)) continue;
    const m = e.event.value;
    assert.equal(m.value.case, 'gauge', `${m.name} is a gauge`);
    const g = m.value.value.value;
    assert.equal(g.case, 'absolute', `${m.name} is set, not moved`);
    const at = Number(m.timestamp!.seconds) * 1000 + m.timestamp!.nanos / 1e6;
    out.push({ name: m.name, thread: m.labels.thread, value: g.value!, at });
  }
  return out;
}

const ringPeaks = (ls: Level[], thread: string) => ls.filter((l) => l.name === 'metrics_exporter_tcp_ring_peak' && l.thread === thread).map((l) => l.value);
const queuePeaks = (ls: Level[]) => ls.filter((l) => l.name === 'metrics_exporter_tcp_client_queue_peak').map((l) => l.value);

/** One record delivered: the worker then waits out its flush interval, woken early only at a quarter of a ring. */
async function settle(recorder: TcpRecorder, client: TestClient): Promise<void> {
  const before = client.events().length;
  recorder.counter('settle').increment();
  await waitFor('the settling record', () => client.events().length > before);
}

test('a burst of known size into a known ring is reported as its peak; the recommendation is the next power of two with 2x room', async (t) => {
  const { recorder, client } = await withClient((b) => b.bufferSize(4096).flushIntervalMs(2000));
  t.after(() => recorder.close());
  t.after(() => client.close());
  await settle(recorder, client);
  const burst = 1000; // under the ring's wake mark (1024): the worker sleeps through it
  const c = recorder.counter('burst');
  for (let i = 0; i < burst; i++) c.increment();
  await waitFor('the burst reported', () => ringPeaks(levels(client.allEvents()), 'main').some((v) => v >= burst - UNPUBLISHED), 5000, () => levels(client.allEvents()));
  const all = levels(client.allEvents());
  const peak = Math.max(...ringPeaks(all, 'main'));
  t.diagnostic(`burst ${burst}, reported peak ${peak}`);
  assert.ok(peak >= burst - UNPUBLISHED && peak <= burst, `peak ${peak} within [${burst - UNPUBLISHED}, ${burst}]`);
  assert.equal(recommendBufferSize(peak), 2048);
  assert.deepEqual(all.filter((l) => l.name === 'metrics_exporter_tcp_buffer_size').map((l) => l.value), [4096], 'the buffer size, once');
  // Once the burst is drained, the next window reports the ring empty; then, idle, nothing more.
  await waitFor('the ring reported empty', () => ringPeaks(levels(client.allEvents()), 'main').at(-1) === 0, 5000);
  const settled = client.allEvents().length;
  await new Promise((r) => setTimeout(r, 500));
  assert.equal(client.allEvents().length, settled, 'an idle exporter sends no fill levels');
  // At most one report per interval (100 ms), stamped with its window's end.
  const stamps = [...new Set(levels(client.allEvents()).map((l) => l.at))];
  for (let i = 1; i < stamps.length; i++) assert.ok(stamps[i]! - stamps[i - 1]! >= 99, `reports ${stamps[i]! - stamps[i - 1]!} ms apart`);
  // Metadata first, each with its unit.
  const meta = client.allEvents().flatMap((e) => (e.event.case === 'metadata' && isFillLevel(e) ? [e.event.value] : []));
  assert.deepEqual(meta.map((m) => [m.name, m.unit.value]).sort(), [
    ['metrics_exporter_tcp_buffer_size', 'count'],
    ['metrics_exporter_tcp_client_queue_peak', 'count'],
    ['metrics_exporter_tcp_ring_peak', 'count'],
  ]);
  assert.equal(recorder.stats().dropped.ringFull, 0);
});

test('a ring that overflowed reports the buffer size itself as its peak', async (t) => {
  const { recorder, client } = await withClient((b) => b.bufferSize(1024).flushIntervalMs(2000));
  t.after(() => recorder.close());
  t.after(() => client.close());
  await settle(recorder, client);
  const c = recorder.counter('flood');
  for (let i = 0; i < 5000; i++) c.increment();
  await waitFor('the drops counted', () => recorder.stats().dropped.ringFull > 0);
  await waitFor('the overflow reported', () => ringPeaks(levels(client.allEvents()), 'main').includes(1024), 5000, () => levels(client.allEvents()));
  assert.ok(ringPeaks(levels(client.allEvents()), 'main').every((v) => v <= 1024), 'never more than the ring holds');
  assert.equal(recommendBufferSize(1024), 2048, 'a full ring asks for twice the size at least');
});

test("another thread's ring is reported under its threadId", async (t) => {
  const { recorder, client } = await withClient((b) => b.bufferSize(4096).flushIntervalMs(2000));
  t.after(() => recorder.close());
  t.after(() => client.close());
  await settle(recorder, client);
  const burst = 700;
  const th = startThread(recorder, [{ do: 'burst', n: burst, key: 'from_thread' }], 'linger');
  t.after(() => th.worker.terminate());
  await th.done;
  const label = String(th.worker.threadId);
  await waitFor("the thread's burst reported", () => ringPeaks(levels(client.allEvents()), label).some((v) => v >= burst - UNPUBLISHED), 5000, () => levels(client.allEvents()));
  const peak = Math.max(...ringPeaks(levels(client.allEvents()), label));
  assert.ok(peak <= burst, `peak ${peak} of a burst of ${burst}`);
});

test("a client that stops reading is told its queue's peak: the buffer size once it dropped; a reading client's stays low", async (t) => {
  const { recorder, client: reader } = await withClient((b) => b.bufferSize(2048));
  t.after(() => recorder.close());
  t.after(() => reader.close());
  const stalled = await TestClient.connect(recorder.address);
  t.after(() => stalled.close());
  await waitFor('two clients', () => recorder.stats().clients === 2);
  stalled.socket.pause();
  // Frames of ~600 bytes: the socket's buffers hold a few thousand, then the queue fills and drops.
  const c = recorder.counter({ name: 'bulk', labels: { pad: 'p'.repeat(600) } });
  for (let round = 0; round < 20 && recorder.stats().dropped.clientQueue === 0; round++) {
    for (let i = 0; i < 2000; i++) c.increment();
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.ok(recorder.stats().dropped.clientQueue > 0, 'the stalled client lost frames');
  stalled.socket.resume();
  await waitFor('the stalled client told its queue was full', () => queuePeaks(levels(stalled.allEvents())).includes(2048), 10_000, () => queuePeaks(levels(stalled.allEvents())));
  const readerMax = Math.max(0, ...queuePeaks(levels(reader.allEvents())));
  t.diagnostic(`reading client's largest queue peak: ${readerMax} of 2048`);
  assert.ok(readerMax < 2048, 'the reading client never filled its queue');
});

test('fill levels are ordinary gauges: protoc reads them; selfMetrics(false) sends none', async (t) => {
  const on = await withClient((b) => b.flushIntervalMs(5));
  t.after(() => on.recorder.close());
  t.after(() => on.client.close());
  on.recorder.counter('x').increment();
  await waitFor('a ring peak', () => ringPeaks(levels(on.client.allEvents()), 'main').length > 0);
  // The tests' quick check of a raw frame agrees with decoding it.
  for (const f of on.client.allFrames()) assert.equal(isFillLevelFrame(f), isFillLevel(fromBinary(EventSchema, f)));
  if (protoc() === undefined) t.diagnostic(NO_PROTOC);
  else {
    const frame = on.client.allFrames().find((f) => protocDecode(f).includes('metrics_exporter_tcp_ring_peak') && protocDecode(f).includes('metric {'));
    assert.ok(frame !== undefined, 'protoc finds the ring peak');
    const text = protocDecode(frame);
    assert.match(text, /key: "thread"\s+value: "main"/);
    assert.match(text, /gauge \{\s+absolute: \d+/);
  }

  const off = await withClient((b) => b.selfMetrics(false).flushIntervalMs(5));
  t.after(() => off.recorder.close());
  t.after(() => off.client.close());
  off.recorder.counter('x').increment();
  await waitFor('the record', () => off.client.events().length > 0);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(off.client.allEvents().filter(isFillLevel).length, 0);
});
