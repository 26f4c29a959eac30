// The frame kernel (WebAssembly) against the JavaScript encoder it stands in for: the same
// generated records, through a pipeline with the kernel and one without, must give the same
// bytes, frame by frame, and the same counts; and the frames must decode.
import { fromBinary } from '@bufbuild/protobuf';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { EventSchema as SeedEvent } from '../src/gen/event_pb.js';
import { EventSchema as ObserverEvent } from '../src/gen/observer_event_pb.js';
import { CTL_BYTES, Op, RingSlot, createRing, recordHeader, ringViews, type RingViews } from '../src/shared/layout.js';
import type { Protocol } from '../src/shared/messages.js';
import { StatsBlock } from '../src/shared/stats-block.js';
import { WallClock } from '../src/worker/clock.js';
import { FrameEncoder, GaugeOp, type Chunk } from '../src/worker/encoder.js';
import { FrameKernel, KernelStop } from '../src/worker/frame-kernel.js';
import { KeyTable } from '../src/worker/keys.js';
import type { Pipeline } from '../src/worker/pipeline.js';
import { MAIN_RING, RingReader } from '../src/worker/ring-reader.js';
import { Counters } from '../src/worker/stats.js';
import type { Transport } from '../src/worker/transport/server.js';
import { Rng, baseSeed } from './fuzz-input.js';
import { splitFrames } from './helpers.js';
import { pipelineOver } from './pipeline-parts.js';

const RING = 4096;

/** One step of a script, applied alike to both pipelines. */
type Step =
  | { s: 'attach'; ring: number }
  | { s: 'close'; ring: number }
  | { s: 'key'; ring: number; id: number; key: number }
  | { s: 'record'; ring: number; id: number; op: Op; value: number | bigint }
  | { s: 'round' }
  /** Metadata: the batch so far is sent before it, and the batch goes on after it. */
  | { s: 'meta'; ring: number; name: string }
;

/** What a pipeline sent: every frame's bytes, in order, and what it counted. */
interface Output {
  frames: string[];
  recorded: number;
  invalid: number;
  /** How the kernel's calls ended, counted by a spy on the WebAssembly function (zeros without a kernel). */
  kernel: KernelTally;
}

/** What the kernel did in a pipeline's run. */
interface KernelTally {
  /** Records it encoded, and those of them during the warm-up. */
  took: number;
  tookInWarmUp: number;
  /** Its output area filled (it hands its frames over and goes on). */
  outFull: number;
  /** The batch filled after it had written frames in that call. */
  batchFullMidCall: number;
  /** A character per round that took records: K if the kernel encoded in it, . if not. */
  rounds: string;
}

/** A key as large as the recorder allows: 64 labels, names and values of 1024 three-byte characters. */
const LARGEST_KEY = -1;

/** The keys a script draws from: short and long names, none to many labels. */
function keyOf(k: number): { canonical: string; name: string; labels: [string, string][] } {
  if (k === LARGEST_KEY) {
    const labels = Array.from({ length: 64 }, (_, i): [string, string] => [String(i).padStart(4, '0') + '€'.repeat(1020), '€'.repeat(1024)]);
    return { canonical: 'largest', name: '€'.repeat(1024), labels };
  }
  const labels: [string, string][] = [];
  for (let i = 0; i < k % 5; i++) labels.push([`label_${i}`, `value-${k}-${'x'.repeat((k * 37 + i * 11) % (k % 7 === 0 ? 400 : 30))}`]);
  const name = `metric_${k}${k % 3 === 0 ? '_with_a_rather_longer_name' : ''}`;
  return { canonical: `${name}{${labels.map(([a, b]) => `${a}=${b}`).join(',')}}`, name, labels };
}

/** A value for `op`: mostly valid, with the edges and invalid ones among them. */
function valueFor(rng: Rng, op: Op): number | bigint {
  if (op === Op.CounterU64) return rng.pick([0n, 1n, 127n, 128n, 2n ** 32n, 2n ** 53n + 1n, 2n ** 64n - 1n, BigInt(rng.int(1e9))]);
  if (op === Op.Counter) {
    if (rng.chance(0.6)) return rng.int(200);
    return rng.pick([0, -0, 1, 127, 128, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1, 2 ** 53, -1, 1.5, NaN, Infinity, rng.int(2 ** 40)]);
  }
  if (rng.chance(0.6)) return rng.int(1000) / 8;
  return rng.pick([0, -0, NaN, Infinity, -Infinity, -1e300, 5e-324, 2 ** 64]);
}

/** A script over `rings` rings, `keys` distinct keys with ids below `ids`. */
function script(rng: Rng, rings: number, keys: number, ids: number, records: number): Step[] {
  const steps: Step[] = [];
  for (let r = 1; r <= rings; r++) steps.push({ s: 'attach', ring: r });
  const ops = [Op.Counter, Op.Counter, Op.Counter, Op.CounterU64, Op.GaugeSet, Op.GaugeIncrement, Op.GaugeDecrement, Op.Histogram];
  const pending = new Map<number, number>();
  for (let n = 0; n < records; n++) {
    const ring = 1 + rng.int(rings);
    const id = rng.int(ids);
    // Most ids are announced before use; some are announced again with another key, some never.
    if (rng.chance(0.02) || (id % 17 !== 16 && !pending.has(ring * ids + id))) {
      pending.set(ring * ids + id, 1);
      steps.push({ s: 'key', ring, id, key: rng.int(keys) });
    }
    // Runs of one key, as a busy counter makes.
    const run = rng.chance(0.3) ? 1 + rng.int(50) : 1;
    const op = rng.pick(ops);
    for (let j = 0; j < run; j++) steps.push({ s: 'record', ring, id, op, value: valueFor(rng, op) });
    n += run - 1;
    if (rng.chance(0.01)) steps.push({ s: 'round' });
  }
  steps.push({ s: 'round' });
  return steps;
}

/**
 * Counts, in `tally`, what `pipeline`'s kernel does: wraps its WebAssembly function, which
 * leaves its status in the memory's third word, and the pipeline's round (`recorded` tells
 * whether a round took records).
 */
function spyOnKernel(pipeline: Pipeline, tally: KernelTally, recorded: () => number): void {
  const internals = pipeline as unknown as { kernel: { run: (...args: number[]) => number; i32: Int32Array } | undefined; round(): number };
  const kernel = internals.kernel;
  if (kernel === undefined) return;
  const wasm = kernel.run;
  let ran = false;
  kernel.run = (...args: number[]): number => {
    const i = wasm(...args);
    const from = args[1]!;
    const status = kernel.i32[2];
    tally.took += i - from;
    if (status === 2) tally.outFull++; // frame-kernel.wat's "output area full", handled inside encode()
    if (status === KernelStop.BatchFull && i > from) tally.batchFullMidCall++;
    ran = true;
    return i;
  };
  const round = internals.round.bind(pipeline);
  internals.round = (): number => {
    ran = false;
    const before = recorded();
    const did = round();
    if (recorded() > before) tally.rounds += ran ? 'K' : '.';
    return did;
  };
}

/** Runs `steps` through a pipeline, with the kernel or without (warmed up first if asked), and collects what it sent. */
function run(protocol: Protocol, steps: readonly Step[], kernel: 'auto' | 'always' | 'never', warmUp = false): Output {
  const ctl = new SharedArrayBuffer(CTL_BYTES);
  const frames: string[] = [];
  let mono = 0;
  const take = (bytes: Uint8Array, ends: ArrayLike<number>): void => {
    let at = 0;
    for (let i = 0; i < ends.length; i++) {
      frames.push(Buffer.from(bytes.subarray(at, ends[i])).toString('hex'));
      at = ends[i]!;
    }
  };
  const transport = {
    clientCount: 1,
    broadcast: (chunk: Chunk) => take(chunk.bytes, chunk.ends),
    broadcastMetadata: (frame: Uint8Array) => take(frame, [frame.length]),
    lose: () => {},
    cork: () => {},
    uncork: () => {},
  } as unknown as Transport;
  const counters = new Counters(new StatsBlock(ctl));
  const pipeline = pipelineOver(ctl, new RingReader(createRing(RING), undefined, 0, MAIN_RING), transport, {
    protocol,
    counters,
    // Each round's timestamp differs: a prefix kept past its batch would show.
    clock: new WallClock(() => 1_764_000_000_123.5, () => (mono += 1.25)),
    kernel,
  });
  const internals = pipeline as unknown as { kernel: FrameKernel | undefined };
  assert.equal(internals.kernel !== undefined, kernel !== 'never', kernel !== 'never' ? 'the kernel runs on this platform' : 'the kernel is off');
  const tally: KernelTally = { took: 0, tookInWarmUp: 0, outFull: 0, batchFullMidCall: 0, rounds: '' };
  spyOnKernel(pipeline, tally, () => counters.recorded);
  if (warmUp) {
    pipeline.warmUp();
    tally.tookInWarmUp = tally.took;
  }
  const rings = new Map<number, { views: RingViews; tail: number; sent: number }>();
  const drain = (): void => {
    for (const r of rings.values()) {
      Atomics.store(r.views.header, RingSlot.ControlSent, r.sent);
      Atomics.store(r.views.header, RingSlot.Tail, r.tail);
    }
    while (pipeline.round() > 0);
  };
  for (const step of steps) {
    if (step.s === 'round') {
      drain();
      continue;
    }
    if (step.s === 'attach') {
      const desc = createRing(RING);
      rings.set(step.ring, { views: ringViews(desc.sab), tail: 0, sent: 0 });
      pipeline.onChannel({ t: 'attach', ring: step.ring, desc});
      continue;
    }
    const r = rings.get(step.ring)!;
    if (step.s === 'close') {
      drain();
      Atomics.store(r.views.header, RingSlot.Closed, 1);
      continue;
    }
    if (step.s === 'meta') {
      pipeline.onChannel({ t: 'meta', ring: step.ring, pos: r.tail, seq: r.sent, name: step.name, kind: 'counter', unit: undefined, description: undefined });
      r.sent++;
      continue;
    }
    if (step.s === 'key') {
      pipeline.onChannel({ t: 'key', ring: step.ring, pos: r.tail, seq: r.sent, id: step.id, ...keyOf(step.key) });
      r.sent++;
      continue;
    }
    if (r.tail - (Atomics.load(r.views.header, 0) | 0) >= RING) drain(); // full: drain first
    const i = (r.tail & r.views.mask) * 2;
    if (typeof step.value === 'bigint') r.views.u64[i + 1] = step.value;
    else r.views.f64[i + 1] = step.value;
    r.views.f64[i] = recordHeader(step.id, step.op);
    r.tail++;
  }
  drain();
  pipeline.stop(Date.now() + 5000);
  return { frames, recorded: counters.recorded, invalid: counters.invalid, kernel: tally };
}

/**
 * The pipelines sent the same frames and counted the same: without the kernel, with it on every
 * round, and with it on while it pays off (the default); the frames decode.
 */
function same(protocol: Protocol, steps: readonly Step[]): { always: Output; auto: Output } {
  const reference = run(protocol, steps, 'never');
  const kernel = run(protocol, steps, 'always');
  const auto = run(protocol, steps, 'auto');
  for (const out of [kernel, auto]) {
    assert.equal(out.frames.length, reference.frames.length, 'as many frames');
    for (let i = 0; i < reference.frames.length; i++) assert.equal(out.frames[i], reference.frames[i], `frame ${i}`);
    assert.equal(out.recorded, reference.recorded);
    assert.equal(out.invalid, reference.invalid);
  }
  const schema = protocol === 'seed' ? SeedEvent : ObserverEvent;
  const all = Buffer.from(kernel.frames.join(''), 'hex');
  const { frames, rest } = splitFrames(all);
  assert.equal(rest, 0);
  for (const f of frames) fromBinary(schema, f);
  return { always: kernel, auto };
}

test('the frame kernel loads on this platform', () => {
  assert.ok(FrameKernel.create('seed', 16) !== undefined, 'WebAssembly is available and the host is little-endian');
});

for (const protocol of ['seed', 'observer-0.11'] as const) {
  test(`${protocol}: the kernel sends what the JavaScript encoder sends, over generated records`, () => {
    for (let c = 0; c < 6; c++) {
      const rng = new Rng(baseSeed() + c);
      const out = same(protocol, script(rng, 1 + rng.int(3), 40, 100 + rng.int(200), 20_000)).always;
      assert.ok(out.frames.length > 10_000, `${out.frames.length} frames`);
      assert.ok(out.invalid > 0, 'invalid values among them');
    }
  });
}

test('the kernel over long keys: rounds larger than a batch, prefixes outgrow the arena, tables grow', () => {
  const rng = new Rng(baseSeed() + 100);
  // 3000 keys with labels of up to 400 bytes, in three rings, each recorded a few times per
  // round. Metadata every 200 records sends the batch so far: a round then encodes far more
  // than a batch's 512 KiB (in batches cut short by the metadata, none full), and its prefixes
  // outgrow the kernel's 1 MiB arena.
  const steps: Step[] = [];
  for (let ring = 1; ring <= 3; ring++) {
    steps.push({ s: 'attach', ring });
    for (let id = 0; id < 3000; id++) steps.push({ s: 'key', ring, id, key: 7 * id });
  }
  let meta = 0;
  for (let pass = 0; pass < 3; pass++) {
    for (let n = 0; n < 12_000; n++) {
      const ring = 1 + rng.int(3);
      steps.push({ s: 'record', ring, id: rng.int(3000), op: Op.Counter, value: 1 + rng.int(3) });
      if (n % 200 === 199) steps.push({ s: 'meta', ring, name: `m${meta++}` });
    }
    steps.push({ s: 'round' });
  }
  same('seed', steps);
});

test("the kernel fills its output area and the batch part-way through a call: the frames are the encoder's all the same", () => {
  // One key with a frame prefix of about 1 KB, 4000 records a round: the kernel's 256 KiB output
  // area fills every 250 frames or so, and the 512 KiB batch every 500, each after frames of
  // the same call.
  const steps: Step[] = [{ s: 'attach', ring: 1 }, { s: 'key', ring: 1, id: 0, key: 49 }];
  assert.ok(keyOf(49).labels.join('').length > 900);
  for (let round = 0; round < 2; round++) {
    for (let n = 0; n < 4000; n++) steps.push({ s: 'record', ring: 1, id: 0, op: Op.GaugeSet, value: n + round / 2 });
    steps.push({ s: 'round' });
  }
  const { always, auto } = same('seed', steps);
  for (const out of [always, auto]) {
    assert.equal(out.frames.length, 8000);
    assert.ok(out.kernel.took > 7900, `the kernel took ${out.kernel.took} records`);
    assert.ok(out.kernel.outFull >= 16, `its output area filled ${out.kernel.outFull} times`);
    assert.ok(out.kernel.batchFullMidCall >= 8, `the batch filled ${out.kernel.batchFullMidCall} times after frames of the call`);
  }
});

test('auto: the kernel rests 16 rounds after one in which more than one record in 16 went to the encoder, then comes back', () => {
  const steps: Step[] = [{ s: 'attach', ring: 1 }];
  for (let id = 0; id < 2000; id++) steps.push({ s: 'key', ring: 1, id, key: id });
  const round = (ids: number, records: number): Step[] => [
    ...Array.from({ length: records }, (_, n): Step => ({ s: 'record', ring: 1, id: n % ids, op: Op.Counter, value: 1 })),
    { s: 'round' },
  ];
  // 20 rounds of 2000 keys, a record each: every record is its key's first in the batch. Then
  // 40 rounds of one key, 500 records each: one in 500 goes to the encoder.
  for (let r = 0; r < 20; r++) steps.push(...round(2000, 2000));
  for (let r = 0; r < 40; r++) steps.push(...round(1, 500));
  const { always, auto } = same('seed', steps);
  assert.equal(always.kernel.rounds, 'K'.repeat(60));
  assert.equal(auto.kernel.rounds, `K${'.'.repeat(16)}K${'.'.repeat(16)}${'K'.repeat(26)}`);
});

test("the worker's warm-up runs the kernel and leaves it on for the first round, sending nothing", (t) => {
  const steps: Step[] = [{ s: 'attach', ring: 1 }, { s: 'key', ring: 1, id: 0, key: 3 }];
  for (let n = 0; n < 1000; n++) steps.push({ s: 'record', ring: 1, id: 0, op: Op.GaugeIncrement, value: 1 });
  steps.push({ s: 'round' });
  const warmed = run('seed', steps, 'auto', true);
  assert.equal(warmed.frames.length, 1000, 'the warm-up sent nothing'); // (its rounds read the clock: timestamps differ)
  assert.equal(warmed.recorded, 1000, 'nor counted anything');
  t.diagnostic(`the kernel took ${warmed.kernel.tookInWarmUp} of the warm-up's 60 000 records`);
  assert.ok(warmed.kernel.tookInWarmUp >= 20_000, 'the kernel took a third of them at least');
  assert.equal(warmed.kernel.rounds, 'K', 'the first round encodes with the kernel');
});

test('the kernel: rings that go and come, tables that grow, keys announced again', () => {
  const rng = new Rng(baseSeed() + 200);
  // Each ring names its ids differently: a table entry left from another ring would send the wrong key.
  const announce = (ring: number, ids: number): Step[] => Array.from({ length: ids }, (_, id) => ({ s: 'key', ring, id, key: (id * 3 + ring) % 150 }));
  const gauges = (ring: number, n: number, ids: number, from = 0): Step[] =>
    Array.from({ length: n }, (_, k) => ({ s: 'record', ring, id: from + rng.int(ids - from), op: Op.GaugeSet, value: k }));
  // In one batch, ring 1 grows its table past 64 entries (freeing the first), then ring 2 makes its first.
  const steps: Step[] = [{ s: 'attach', ring: 1 }, { s: 'attach', ring: 2 }, ...announce(1, 70), ...announce(2, 70)];
  steps.push(...gauges(1, 100, 64), ...gauges(1, 100, 70, 64), ...gauges(2, 200, 64), { s: 'round' });
  for (let ring = 3; ring <= 8; ring++) {
    steps.push({ s: 'attach', ring }, ...announce(ring, 70));
    for (let n = 0; n < 3000; n++) {
      const id = rng.int(n < 200 ? 64 : 70);
      if (rng.chance(0.01)) steps.push({ s: 'key', ring, id, key: 150 + rng.int(50) }); // the id now names another key
      steps.push({ s: 'record', ring, id, op: Op.GaugeSet, value: n });
      if (rng.chance(0.002)) steps.push({ s: 'round' });
    }
    steps.push({ s: 'close', ring: ring - 1 }); // its table is freed, for the next ring to take
  }
  same('seed', steps);
});

/**
 * A kernel and an encoder on their own, over a ring holding `records` (of local id `id`, one key
 * named `name`), with a batch begun; `batch()` begins another.
 */
function kernelOver(name: string, id: number, records: readonly (readonly [Op, number])[]) {
  const kernel = FrameKernel.create('seed', 16)!;
  const encoder = new FrameEncoder('seed');
  const key = new KeyTable().entry(name, name, []);
  const desc = createRing(16);
  const ring = new RingReader(desc, undefined, 0, MAIN_RING);
  const { f64 } = ringViews(desc.sab);
  records.forEach(([op, value], i) => {
    f64[2 * i + 1] = value;
    f64[2 * i] = recordHeader(id, op);
  });
  const batch = (): void => {
    encoder.begin(1_764_000_000_000);
    kernel.begin();
  };
  batch();
  return { kernel, encoder, key, ring, batch };
}

test('the kernel forgets every prefix when its epochs start over', () => {
  const { kernel, encoder, key, ring, batch } = kernelOver('k', 0, [[Op.GaugeSet, 2.5]]);
  encoder.gauge(key, GaugeOp.Set, 1); // the encoder writes the first frame of the key
  kernel.learn(ring, 0, key, encoder);
  kernel.load(ring, 0, 1);
  kernel.encode(ring, 0, 1, encoder);
  assert.equal(kernel.stop, KernelStop.Done, 'the kernel writes the next one');
  batch();
  kernel.encode(ring, 0, 1, encoder);
  assert.equal(kernel.stop, KernelStop.NeedsEncoder, 'not in the next batch');
  // 2^31 batches later the epoch is the first one's again.
  (kernel as unknown as { epoch: number }).epoch = 0x7fffffff - 1;
  batch();
  kernel.encode(ring, 0, 1, encoder);
  assert.equal(kernel.stop, KernelStop.NeedsEncoder, 'nor after the epochs started over');
  encoder.finish()?.release();
});

test('a kernel whose memory cannot grow leaves the keys it has no table for to the encoder', () => {
  const id = 1 << 20; // a table for it needs 64 MiB more (2^21 entries of 32 bytes)
  const { kernel, encoder, key, ring } = kernelOver('k', id, [[Op.GaugeSet, 2.5]]);
  const internals = kernel as unknown as { memory: { buffer: ArrayBuffer; grow(pages: number): number } };
  const memory = internals.memory;
  internals.memory = {
    get buffer() {
      return memory.buffer;
    },
    grow: () => {
      throw new RangeError('WebAssembly.Memory.grow(): Maximum memory size exceeded');
    },
  };
  encoder.gauge(key, GaugeOp.Set, 1);
  kernel.learn(ring, id, key, encoder);
  kernel.load(ring, 0, 1);
  kernel.encode(ring, 0, 1, encoder);
  assert.equal(kernel.stop, KernelStop.NeedsEncoder);
  encoder.finish()?.release();
});

test('the kernel takes a key whose records alternate between two shapes (a gauge up and down)', () => {
  const ups = Array.from({ length: 8 }, (_, i) => [i % 2 === 0 ? Op.GaugeIncrement : Op.GaugeDecrement, 1] as const);
  const { kernel, encoder, key, ring } = kernelOver('in_flight', 0, ups);
  // The encoder writes the first of each shape; the kernel learns both.
  encoder.gauge(key, GaugeOp.Increment, 1);
  kernel.learn(ring, 0, key, encoder);
  encoder.gauge(key, GaugeOp.Decrement, 1);
  kernel.learn(ring, 0, key, encoder);
  kernel.load(ring, 0, 8);
  assert.equal(kernel.encode(ring, 0, 8, encoder), 8);
  assert.equal(kernel.stop, KernelStop.Done, 'all eight, both shapes');
  const chunk = encoder.finish()!;
  const frames = splitFrames(chunk.bytes).frames.map((f) => fromBinary(SeedEvent, f));
  assert.equal(frames.length, 10);
  const gauges = frames.slice(2).map((e) => (e.event.case === 'metric' && e.event.value.value.case === 'gauge' ? e.event.value.value.value.value.case : undefined));
  assert.deepEqual(
    gauges,
    Array.from({ length: 8 }, (_, i) => (i % 2 === 0 ? 'increment' : 'decrement')),
  );
  chunk.release();
});

test('the kernel with the largest key the recorder allows (a 400 KB frame prefix)', () => {
  const steps: Step[] = [{ s: 'attach', ring: 1 }, { s: 'key', ring: 1, id: 0, key: LARGEST_KEY }];
  for (let n = 0; n < 4; n++) steps.push({ s: 'record', ring: 1, id: 0, op: Op.GaugeSet, value: n });
  const out = same('seed', steps).always;
  assert.equal(out.frames.length, 4);
  assert.ok(out.frames[0]!.length / 2 > 393_000, `a frame of ${out.frames[0]!.length / 2} bytes`);
});
