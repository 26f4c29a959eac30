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
import { waitFor } from './helpers.js';

/** A socket with no file descriptor (so every batch goes through `write()`), that never emits 'drain'. */
class QuietSocket extends EventEmitter {
  writable = true;
  writableLength = 0;
  written = 0;
  setNoDelay(): this {
    return this;
  }
  resume(): this {
    return this;
  }
  write(bytes: Uint8Array, done: (err?: Error | null) => void): boolean {
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
