// Our exporter, driven through the scenario the seed's golden captures were made with, sends
// the same bytes as the Rust crate, timestamps aside. Frames are compared at the byte level
// by a field walker written here, not by protobuf-es.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { splitFrames, TestClient, waitFor, startExporter } from './helpers.js';

const fixture = (name: string) => new URL(`../../test/fixtures/seed-golden/${name}`, import.meta.url);
const golden = (name: string) => splitFrames(readFileSync(fixture(name))).frames.map((f) => Buffer.from(f));

function readVarint(b: Uint8Array, pos: number): [number, number] {
  let v = 0;
  let shift = 0;
  for (;;) {
    const byte = b[pos++]!;
    v += (byte & 0x7f) * 2 ** shift;
    shift += 7;
    if (byte < 0x80) return [v, pos];
  }
}

/** A metric frame's bytes with `Metric.timestamp` (field 2) cut out; other frames unchanged. */
function withoutTimestamp(frame: Uint8Array): string {
  if (frame[0] !== 0x12) return Buffer.from(frame).toString('hex'); // metadata
  const [len, start] = readVarint(frame, 1);
  const body = frame.subarray(start, start + len);
  const kept: Uint8Array[] = [];
  let pos = 0;
  while (pos < body.length) {
    const [tag, afterTag] = readVarint(body, pos);
    let end: number;
    switch (tag & 7) {
      case 0:
        end = readVarint(body, afterTag)[1];
        break;
      case 1:
        end = afterTag + 8;
        break;
      case 2: {
        const [n, p] = readVarint(body, afterTag);
        end = p + n;
        break;
      }
      case 5:
        end = afterTag + 4;
        break;
      default:
        throw new Error(`unexpected wire type in ${Buffer.from(frame).toString('hex')}`);
    }
    if (tag >>> 3 !== 2) kept.push(body.subarray(pos, end));
    pos = end;
  }
  return Buffer.concat(kept).toString('hex');
}

test('frames match the Rust crate byte for byte (timestamps aside)', async (t) => {
  const recorder = await startExporter((b) => b.bufferSize(1024));
  t.after(() => recorder.close());
  const key = { name: 'requests', labels: { service: 'api', region: 'eu' } };
  const depth = { name: 'queue_depth', labels: { service: 'api', region: 'eu' } };
  const latency = { name: 'latency', labels: { service: 'api', region: 'eu' } };

  // 1. nobody connected: not recorded, never sent
  recorder.incrementCounter(key, 100);
  // 2. client A connects
  const a = await TestClient.connect(recorder.address);
  t.after(() => a.close());
  await waitFor('client A', () => recorder.stats().clients === 1);
  // 3. registration
  recorder.registerCounter(key, 'count', 'Total requests');
  recorder.registerGauge(depth);
  recorder.registerHistogram(latency, 'seconds');
  // 4. one record of each op
  recorder.incrementCounter(key, 3);
  recorder.updateGauge(depth, { absolute: 7.5 });
  recorder.updateGauge(depth, { increment: 2 });
  recorder.updateGauge(depth, { decrement: 1.5 });
  recorder.recordHistogram(latency, 0.25);
  await waitFor('8 frames at A', () => a.frames().length === 8);

  const metadata = golden('late-client-on-connect.bin').map(withoutTimestamp).sort();
  const aFrames = a.frames().map(withoutTimestamp);
  // The seed never sent metadata to a client that was connected before registration; we do
  // (DESIGN.md lists it as a fix), and the metadata frames themselves are the seed's bytes.
  assert.deepEqual(aFrames.slice(0, 3).sort(), metadata);
  assert.deepEqual(aFrames.slice(3), golden('seed-capture.bin').map(withoutTimestamp));

  // 5. a late client gets the metadata replay: the seed's exact bytes (its order was a hash map's)
  const b = await TestClient.connect(recorder.address);
  t.after(() => b.close());
  await waitFor('replay at B', () => b.frames().length === 3);
  assert.deepEqual(b.frames().map(withoutTimestamp).sort(), metadata);
  await waitFor('client B', () => recorder.stats().clients === 2);

  // 6. both clients get the next record
  recorder.incrementCounter(key, 1);
  await waitFor('phase 6 at A and B', () => a.frames().length === 9 && b.frames().length === 4);
  const phase6 = golden('phase6-clientA.bin').map(withoutTimestamp);
  assert.deepEqual(golden('phase6-clientB.bin').map(withoutTimestamp), phase6);
  assert.deepEqual(a.frames().slice(8).map(withoutTimestamp), phase6);
  assert.deepEqual(b.frames().slice(3).map(withoutTimestamp), phase6);
});
