// A worker can die at any instruction (a bug, an out-of-memory, worker.terminate()). What it
// changes in memory that outlives it goes through the journal: a worker that dies anywhere in a
// round leaves its successor either none or all of that round's changes to a ring, so that the
// replay totals, the ring's head and the figures count every record exactly once.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CTL_BYTES,
  Op,
  REPLAY_SLOTS,
  RingSlot,
  Stat,
  createRing,
  journalBytes,
  recordHeader,
  ringViews,
  type RingDescriptor,
} from '../src/shared/layout.js';
import { StatsBlock } from '../src/shared/stats-block.js';
import type { Chunk } from '../src/worker/chunk.js';
import { Entry, Journal, type JournalTargets } from '../src/worker/journal.js';
import { KeyTable } from '../src/worker/keys.js';
import { ReplayTable } from '../src/worker/replay.js';
import { MAIN_RING, RingReader } from '../src/worker/ring-reader.js';
import type { Transport } from '../src/worker/transport/server.js';
import { pipelineOver } from './pipeline-parts.js';

/** Targets that write into `mem`, and stop the worker (throw) at write number `dieAt`. */
function targets(mem: number[], dieAt = Number.POSITIVE_INFINITY): JournalTargets {
  let writes = 0;
  const write = (at: number, v: number): void => {
    if (writes++ === dieAt) throw new Error('the worker dies here');
    mem[at] = v;
  };
  return {
    head: (ring, head) => write(ring, head),
    slot: (slot, lo) => write(100 + slot, lo),
    fold: (_ring, id, counter) => write(200 + id, counter),
  };
}

test('a commit is applied whole by the next worker, wherever the worker applying it died', () => {
  const entries = (j: Journal): void => {
    j.put(Entry.Head, 1, 50, 0);
    j.put(Entry.Slot, 3, 7, 0, 0, 1);
    j.put(Entry.Fold, 1, 9, 4, 0, 0);
    j.put(Entry.Figures, 50, 2, 1);
  };
  const whole: number[] = [];
  const ok = new Journal(new SharedArrayBuffer(journalBytes(true)), targets(whole));
  entries(ok);
  ok.commit();
  assert.deepEqual(ok.committed(), { recorded: 50, ringFull: 2, invalid: 1 });

  for (let dieAt = 0; dieAt <= 2; dieAt++) {
    const sab = new SharedArrayBuffer(journalBytes(true));
    const mem: number[] = [];
    const dying = new Journal(sab, targets(mem, dieAt));
    entries(dying);
    assert.throws(() => dying.commit(), /dies here/);
    const next = new Journal(sab, targets(mem));
    assert.equal(next.recover(), true, `died at write ${dieAt}: the commit is finished`);
    assert.deepEqual(mem, whole);
    assert.deepEqual(next.committed(), { recorded: 50, ringFull: 2, invalid: 1 });
    assert.equal(next.recover(), false, 'and only once');
  }

  // Dying before the commit point: nothing of it is applied.
  const sab = new SharedArrayBuffer(journalBytes(true));
  const mem: number[] = [];
  entries(new Journal(sab, targets(mem)));
  assert.equal(new Journal(sab, targets(mem)).recover(), false);
  assert.deepEqual(mem, []);
});

/** What a worker keeps across a restart: the ring, the replay table, the journal, the control block. */
interface Shared {
  ring: RingDescriptor;
  table: SharedArrayBuffer;
  journal: SharedArrayBuffer;
  ctl: SharedArrayBuffer;
}

/** A worker's pipeline over `shared`, with replayOnConnect, one key (a counter), and no client. */
function worker(shared: Shared, slots: [string, number][]) {
  const replay = new ReplayTable(shared.table, slots, 'seed', (c, s) => slots.push([c, s]), () => {});
  const keys = new KeyTable();
  const reader = new RingReader(shared.ring, undefined, 0, MAIN_RING);
  const transport = { clientCount: 0, broadcast: (_: Chunk) => {}, broadcastMetadata: () => {}, lose: () => {}, cork: () => {}, uncork: () => {} };
  const pipeline = pipelineOver(shared.ctl, reader, transport as unknown as Transport, { keys, replay, journal: shared.journal });
  pipeline.apply(reader, [{ t: 'key', pos: 0, seq: 0, id: 0, canonical: '["jobs"]', name: 'jobs', labels: [] }]);
  return { pipeline, replay, reader };
}

test('a worker that dies anywhere in a round leaves the totals counting each record once', () => {
  const records = 300;
  // Die at each point: while the round adds records to the totals (before its commit), and at
  // each write of its commit.
  const deaths: ({ inRecord: number } | { inCommit: number })[] = [
    ...[0, 1, 150, 299].map((n) => ({ inRecord: n })),
    ...[0, 1].map((n) => ({ inCommit: n })),
  ];
  for (const death of deaths) {
    const shared: Shared = {
      ring: createRing(1024),
      table: new SharedArrayBuffer(16 * REPLAY_SLOTS * 8),
      journal: new SharedArrayBuffer(journalBytes(true)),
      ctl: new SharedArrayBuffer(CTL_BYTES),
    };
    const { header, f64 } = ringViews(shared.ring.sab);
    for (let i = 0; i < records; i++) {
      f64[i * 2 + 1] = 1;
      f64[i * 2] = recordHeader(0, Op.Counter);
    }
    Atomics.store(header, RingSlot.Tail, records);
    const slots: [string, number][] = [];
    const first = worker(shared, slots);
    let n = 0;
    if ('inRecord' in death) {
      const counter = first.replay.counter.bind(first.replay);
      first.replay.counter = (slot, lo, hi) => {
        if (n++ === death.inRecord) throw new Error('the worker dies here');
        counter(slot, lo, hi);
      };
    } else {
      const persist = first.replay.persist.bind(first.replay);
      const head = first.reader.persist.bind(first.reader);
      // The commit writes the ring's head first, then the slot: count both.
      first.reader.persist = (h, taken) => {
        if (n++ === death.inCommit) throw new Error('the worker dies here');
        head(h, taken);
      };
      first.replay.persist = (...a) => {
        if (n++ === death.inCommit) throw new Error('the worker dies here');
        persist(...a);
      };
    }
    assert.throws(() => first.pipeline.round(), /dies here/, JSON.stringify(death));

    const next = worker(shared, slots);
    next.pipeline.recover(Date.now() + 5000);
    const table = new Float64Array(shared.table);
    const what = JSON.stringify(death);
    assert.equal(table[0], records, `${what}: the total counts each record once`);
    assert.equal(Atomics.load(header, RingSlot.Head), records, `${what}: every record taken`);
    assert.equal(new StatsBlock(shared.ctl).read()[Stat.Recorded], records, `${what}: and counted once in recorded`);
    // The producer writes on into the slots handed back: those records are new, taken once.
    for (let i = records; i < records + 100; i++) {
      f64[(i & 1023) * 2 + 1] = 1;
      f64[(i & 1023) * 2] = recordHeader(0, Op.Counter);
    }
    Atomics.store(header, RingSlot.Tail, records + 100);
    while (next.pipeline.round() > 0);
    assert.equal(new Float64Array(shared.table)[0], records + 100, `${what}: later records once too`);
    assert.equal(new StatsBlock(shared.ctl).read()[Stat.Recorded], records + 100);
  }
});
