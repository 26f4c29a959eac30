// One client's queue on its own, over a socket that stands in for a real one: it takes every
// write, completes it a turn later, and never emits 'drain' (Node emits it only after a write
// that went past the stream's high-water mark, which a leftover of a direct write often is not).
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import { test } from 'node:test';
import { CTL_BYTES } from '../src/shared/layout.js';
import { StatsBlock } from '../src/shared/stats-block.js';
import { Chunk } from '../src/worker/chunk.js';
import { Counters } from '../src/worker/stats.js';
import { Client } from '../src/worker/transport/client.js';
import { FillReport } from '../src/worker/transport/fill-report.js';
import { REPORT_EVERY_MS } from '../src/worker/transport/loss-report.js';
import { fromBinary } from '@bufbuild/protobuf';
import { EventSchema } from '../src/gen/event_pb.js';
import { splitFrames, waitFor } from './helpers.js';

/** A socket with no file descriptor (so every batch goes through `write()`), that never emits 'drain'. */
class QuietSocket extends EventEmitter {
  writable = true;
  writableLength = 0;
  written = 0;
  readonly bytes: Uint8Array[] = [];
  setNoDelay(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  write(bytes: Uint8Array, done: (err?: Error | null) => void): boolean {
    this.bytes.push(new Uint8Array(bytes)); // a copy: the encoder reuses its buffer
    this.writableLength += bytes.length;
    setImmediate(() => {
      this.writableLength -= bytes.length;
      this.written += bytes.length;
      done(null);
    });
    return true;
  }
}

/** `frames` frames of `size` bytes each, in one chunk. */
function chunkOf(frames: number, size: number): Chunk {
  const ends = new Uint32Array(frames);
  for (let i = 0; i < frames; i++) ends[i] = (i + 1) * size;
  return new Chunk(new Uint8Array(frames * size), ends);
}

test('a client\'s queue is refilled when its socket has written all it was handed, with no \'drain\' and no record after', async () => {
  const socket = new QuietSocket();
  const counters = new Counters(new StatsBlock(new SharedArrayBuffer(CTL_BYTES)));
  const client = new Client(socket as unknown as Socket, {
    limit: 1 << 20,
    counters,
    report: null,
    fill: null,
    now: () => Date.now(),
    wakeAt: () => {},
    onGone: () => {},
  });
  // 1 MiB of frames in 16 batches: four times what a client's socket is handed at once (256 KiB).
  const frames = 16_384;
  for (let i = 0; i < 16; i++) client.enqueue(chunkOf(frames / 16, 64));
  await waitFor('every frame written', () => counters.framesSent === frames, 5000, () => ({ sent: counters.framesSent, written: socket.written }));
  assert.equal(socket.written, frames * 64);
  assert.ok(client.idle);
});

test('a ring peak reported from merged windows is followed by the latest, even once the ring is gone', async () => {
  const socket = new QuietSocket();
  const counters = new Counters(new StatsBlock(new SharedArrayBuffer(CTL_BYTES)));
  const timers = new Set<NodeJS.Timeout>();
  let client: Client | undefined;
  const ctx = {
    limit: 4096,
    counters,
    report: null,
    fill: new FillReport('seed', 4096),
    now: () => Date.now(),
    wakeAt: (at: number) => {
      const t = setTimeout(() => (timers.delete(t), client!.report()), Math.max(0, at - Date.now()));
      timers.add(t);
    },
    onGone: () => {},
  };
  client = new Client(socket as unknown as Socket, ctx);
  try {
    // Windows end within one report interval: the first report can only carry one value. Thread
    // 7's ring is forgotten after its last window (it is empty), thread 8's goes during a burst.
    client.noteFill([{ thread: 7, peak: 3000 }, { thread: 8, peak: 0 }]);
    client.noteFill([{ thread: 7, peak: 0 }, { thread: 8, peak: 500 }]);
    client.noteFill([{ thread: 9, peak: 0 }]);
    const values = (): string[] => {
      const all = new Uint8Array(socket.bytes.reduce((n, b) => n + b.length, 0));
      socket.bytes.reduce((at, b) => (all.set(b, at), at + b.length), 0);
      const out: string[] = [];
      for (const f of splitFrames(all).frames) {
        const e = fromBinary(EventSchema, f);
        if (e.event.case !== 'metric' || e.event.value.name !== 'metrics_exporter_tcp_ring_peak') continue;
        const v = e.event.value.value;
        if (v.case === 'gauge') out.push(`${e.event.value.labels.thread}=${v.value.value.value}`);
      }
      return out;
    };
    await waitFor('the latest window to be reported', () => values().length === 5, 4 * REPORT_EVERY_MS, values);
    assert.deepEqual(values(), ['7=3000', '8=500', '9=0', '7=0', '8=0'], 'the merged windows\' largest peaks, then the latest');
    await new Promise((resolve) => setTimeout(resolve, 2 * REPORT_EVERY_MS));
    assert.equal(values().length, 5, 'nothing more once every value is current');
  } finally {
    for (const t of timers) clearTimeout(t);
  }
});
