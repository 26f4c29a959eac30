// The accounting identity under random mixes of everything at once: threads that exit, are
// terminated while stuck in a synchronous loop, or linger; a piscina pool whose threads wait in
// Atomics.wait; fast, slow and stuck clients that come and go; full rings; invalid values;
// close() deadlines; replayOnConnect on and off; and the transport worker killed at random
// points (between phases, or while it works through a phase's records). For every client:
//   app frames received (not the replayed totals) + drops reported to it (ring_full,
//     client_queue, invalid) = records made while it was connected
// (for a connection a crash cut: at most that); every record made while a client was connected
// is taken once, by the worker or its successor; with replayOnConnect, after each restart and at
// the end, a new client is sent each counter's exact total since the start; and over all
// clients: frames received whole = stats().framesSent, and their lost frames =
// stats().dropped.clientQueue (with crashes, at least). A failing case prints its seed; replay it
// with MTCP_SEED=<seed> MTCP_CASES=1 npm test.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Piscina } from 'piscina';
import type { Event } from '../src/gen/event_pb.js';
import { attach, type Recording, type TcpRecorder } from '../src/index.js';
import { withMetrics } from '../src/piscina.js';
import type { Step } from './fixtures/script-thread.js';
import {
  crashWorker,
  DROPPED_METRIC,
  fillSettled,
  lastFillLevels,
  splitFrames,
  startExporter,
  startThread,
  tally,
  waitFor,
  waitForConnect,
  type ScriptThread,
  type TestClient,
} from './helpers.js';

const POOL_TASK = new URL('./fixtures/pool-task.js', import.meta.url).href;

const BASE_SEED = Number(process.env.MTCP_SEED ?? 20_261_128);
const CASES = Number(process.env.MTCP_CASES ?? 8);
const linux = process.platform === 'linux';

/** mulberry32: a small seeded generator, so that a failing case can be replayed. */
function generator(seed: number) {
  let a = seed >>> 0;
  const next = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
  };
}
type Rng = ReturnType<typeof generator>;

type ClientKind = 'fast' | 'slow' | 'stuck';

interface Watched {
  readonly id: number;
  readonly kind: ClientKind;
  readonly tc: TestClient;
  /** Records made while it was connected, and the ring-full and invalid drops among them. */
  made: number;
  ringFull: number;
  invalid: number;
  /** replayOnConnect: the totals it was sent first, before the live stream. */
  replayed: number;
  /** Its connection was cut by a crash of the worker. */
  cut: boolean;
  stop(): void;
}

const KEYS = ['a', 'b', 'c'];
const BIG = 'x'.repeat(1000); // frames of about 1 KiB fill a slow client's socket sooner

/**
 * A burst's records: `n` of one op on one key, every `invalidEvery`-th invalid; mostly no more
 * than the ring holds, so that records reach the clients' queues, sometimes more.
 */
function burst(rng: Rng, bufferSize: number): Extract<Step, { do: 'burst' }> {
  const big = rng.next() < 0.4;
  return {
    do: 'burst',
    n: rng.next() < 0.8 ? rng.int(1, bufferSize) : rng.int(bufferSize, 4 * bufferSize),
    key: rng.pick(KEYS),
    labels: big ? { pad: BIG } : { t: rng.pick(['1', '2']) },
    op: rng.pick(['counter', 'gauge', 'histogram'] as const),
    invalidEvery: rng.next() < 0.4 ? rng.int(5, 60) : 0,
  };
}

/** Records a burst on this thread, as the fixture does in its threads. */
function recordBurst(m: Recording, b: Extract<Step, { do: 'burst' }>): void {
  const key = { name: b.key, labels: b.labels! };
  const every = b.invalidEvery ?? 0;
  const c = m.counter(key);
  const g = m.gauge(key);
  const h = m.histogram(key);
  for (let i = 1; i <= b.n; i++) {
    const bad = every > 0 && i % every === 0;
    if (b.op === 'counter') c.increment(bad ? -1 : 1);
    else if (b.op === 'gauge') g.set(bad ? Number.NaN : i);
    else h.record(bad ? Number.NaN : i);
  }
}

async function connectClient(recorder: TcpRecorder, id: number, kind: ClientKind): Promise<Watched> {
  const tc = await waitForConnect(recorder.address); // a worker that was just restarted may not listen yet
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  if (kind !== 'fast') tc.socket.pause();
  if (kind === 'slow') {
    // Reads a little every 20 ms.
    timer = setInterval(() => {
      tc.socket.resume();
      setTimeout(() => stopped || tc.socket.pause(), 1);
    }, 20);
  }
  return {
    id,
    kind,
    tc,
    made: 0,
    ringFull: 0,
    invalid: 0,
    replayed: 0,
    cut: false,
    stop: () => {
      stopped = true;
      clearInterval(timer);
      tc.socket.resume();
    },
  };
}

/** What a client got and was told, against what it should have. */
function identity(c: Watched) {
  const t = tally(c.tc.events());
  const accounted = t.metrics - c.replayed + t.dropped.ring_full + t.dropped.client_queue + t.dropped.invalid;
  return { id: c.id, kind: c.kind, cut: c.cut, made: c.made, replayed: c.replayed, ringFull: c.ringFull, invalid: c.invalid, got: t, accounted };
}

function exact(c: Watched): boolean {
  const i = identity(c);
  return i.accounted === c.made && i.got.dropped.ring_full === c.ringFull && i.got.dropped.invalid === c.invalid;
}

/** Counter totals a client was sent (replayed and live), by name and labels; not the drop reports. */
function counterTotals(events: Event[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of events) {
    if (e.event.case !== 'metric' || e.event.value.name === DROPPED_METRIC || e.event.value.value.case !== 'counter') continue;
    const k = keyName(e.event.value.name, e.event.value.labels);
    out.set(k, (out.get(k) ?? 0) + Number(e.event.value.value.value.value));
  }
  return out;
}

function keyName(name: string, labels: Record<string, string>): string {
  return `${name}${JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)))}`;
}

/** Valid counter increments of a burst (every `invalidEvery`-th is -1, dropped). */
function validIncrements(b: Extract<Step, { do: 'burst' }>): number {
  if (b.op !== 'counter') return 0;
  const every = b.invalidEvery ?? 0;
  return every > 0 ? b.n - Math.floor(b.n / every) : b.n;
}

/** Resolves once `client` has received nothing new for `ms`. */
/**
 * Before a client that caught up leaves: its fill levels settle (the exporter's last report
 * says every ring and its queue are empty), and nothing arrives for longer than a report
 * interval. Whatever the exporter wrote to it is then read: `framesSent` stays exact.
 */
async function leaveQuietly(client: TestClient): Promise<void> {
  await waitFor('the fill levels to settle', () => fillSettled(client), 15_000, () => lastFillLevels(client));
  await quiet(client, 150);
}

async function quiet(client: TestClient, ms = 60): Promise<void> {
  for (let last = -1; client.bytes !== last; ) {
    last = client.bytes;
    await new Promise((r) => setTimeout(r, ms));
  }
}

async function runCase(seed: number, log: (s: string) => void): Promise<void> {
  const rng = generator(seed);
  const replay = rng.next() < 0.5;
  // With replayOnConnect, often a ring that seldom fills: the totals are then checked exactly
  // (a record dropped for a full ring is in no total, and which key it was is not known here).
  const bufferSize = replay && rng.next() < 0.6 ? 1 << 16 : rng.pick([16, 256, 1024, 4096]);
  /** Bursts and tasks are sized from this. */
  const scale = Math.min(bufferSize, 1024);
  const closeTimeoutMs = rng.pick([0, 50, 300]);
  const crashes = rng.next() < 0.6;
  const usePool = rng.next() < 0.4;
  const recorder = await startExporter((b) => b.bufferSize(bufferSize).closeTimeoutMs(closeTimeoutMs).replayOnConnect(replay));
  const here = attach(recorder.connector()); // this thread's records go through an attached ring too
  // piscina's threads wait for tasks in Atomics.wait: they never answer anything between tasks.
  const pool = usePool ? new Piscina(withMetrics(recorder, { filename: POOL_TASK, minThreads: 2, maxThreads: 2, idleTimeout: 600_000 })) : undefined;
  const clients: Watched[] = [];
  const gone: Watched[] = [];
  const checkers: TestClient[] = [];
  const threads: ScriptThread[] = [];
  /** Valid counter increments made, by key, whether a client was connected or not (replayOnConnect's totals). */
  const totals = new Map<string, number>();
  const addTotal = (k: string, n: number) => n > 0 && totals.set(k, (totals.get(k) ?? 0) + n);
  let nextId = 0;
  let totalMade = 0; // records made while a client was connected
  let restarts = 0;
  let exactChecks = 0;
  const story: string[] = [`bufferSize ${bufferSize}, closeTimeoutMs ${closeTimeoutMs}, replay ${replay}, crashes ${crashes}, pool ${usePool}`];
  const fail = (what: string, state?: unknown) => new Error(`seed ${seed}: ${what}\n${story.join('\n')}\n${JSON.stringify(state)}`);
  const settle = async (what: string, cond: () => boolean, state: () => unknown, ms = 15_000) => {
    try {
      await waitFor(what, cond, ms);
    } catch {
      throw fail(`timed out waiting for ${what}`, state());
    }
  };
  const attached = (): number => 1 + (pool === undefined ? 0 : 2);
  /**
   * With replayOnConnect: a client connecting now is sent every counter's total since the start,
   * and they must be exactly what was made (every record of a ring dropped when it was full is in
   * no total: with such drops, each total is at most what was made, and they fall short by no
   * more than the drops).
   */
  const checkTotals = async (when: string) => {
    const checker = await waitForConnect(recorder.address);
    checkers.push(checker);
    await settle('the checker to be accepted', () => recorder.stats().clients === clients.length + 1, () => recorder.stats());
    await quiet(checker);
    const got = counterTotals(checker.events());
    const ringFull = recorder.stats().dropped.ringFull;
    let short = 0;
    for (const [k, made] of totals) {
      const g = got.get(k) ?? 0;
      if (g > made || (ringFull === 0 && g !== made)) throw fail(`${when}: total of ${k} is ${g}, ${made} were made`, { got: [...got], ringFull });
      short += made - g;
    }
    if (short > ringFull) throw fail(`${when}: totals fall short by ${short}, more than the ${ringFull} dropped`, { got: [...got] });
    if (ringFull === 0) exactChecks++;
    await leaveQuietly(checker); // like every client: no fill-level report on its way as it closes
    await checker.close();
    await settle('the checker gone', () => recorder.stats().clients === clients.length, () => recorder.stats());
  };
  /** Kills the worker; the clients connected lose their connection. */
  const crash = async (p: number) => {
    for (const c of clients) {
      c.cut = true;
      c.stop();
    }
    await crashWorker(recorder);
    restarts++;
    await settle('the connections of the dead worker to close', () => clients.every((c) => c.tc.closed), () => clients.map(identity));
    gone.push(...clients.splice(0));
    story.push(`phase ${p}: the worker crashes`);
  };
  try {
    if (pool !== undefined) {
      for (let i = 0; recorder.stats().attachedThreads < 3; i++) {
        if (i > 100) throw fail('the pool threads never attached', recorder.stats());
        await Promise.all([pool.run({ n: 0 }), pool.run({ n: 0 })]);
      }
    }
    const phases = rng.int(3, 5);
    for (let p = 0; p < phases; p++) {
      // Clients come and go between phases, once everything before has been handed to them.
      if (clients.length > 0 && rng.next() < 0.4) {
        const leaving = clients.filter((c) => c.kind !== 'stuck');
        if (leaving.length > 0) {
          const c = rng.pick(leaving);
          c.stop();
          await settle(`client ${c.id} to be told everything before it leaves`, () => exact(c), () => identity(c));
          await leaveQuietly(c.tc);
          await c.tc.close();
          clients.splice(clients.indexOf(c), 1);
          gone.push(c);
          story.push(`phase ${p}: client ${c.id} (${c.kind}) leaves`);
        }
      }
      if (crashes && rng.next() < 0.15) await crash(p); // between phases, nothing in flight
      if (clients.length === 0 || rng.next() < 0.5) {
        for (let n = rng.int(1, 2); n > 0; n--) {
          const kind = rng.pick(['fast', 'fast', 'slow', 'stuck'] as const);
          const c = await connectClient(recorder, nextId++, kind);
          clients.push(c);
          story.push(`phase ${p}: client ${nextId - 1} (${kind}) connects`);
          // Connected as far as the worker knows (a client it has not accepted yet gets nothing).
          await settle('the worker to accept the client', () => recorder.stats().clients === clients.length, () => recorder.stats());
          if (replay) {
            // Nothing is recorded now: what it gets first are the replayed totals, then the live stream.
            if (kind !== 'fast') c.tc.socket.resume();
            await quiet(c.tc);
            if (kind !== 'fast') c.tc.socket.pause();
            c.replayed = tally(c.tc.events()).metrics;
          }
        }
      }
      if (rng.next() < 0.15) {
        // A phase with no client at all: nothing recorded, nothing counted (with replayOnConnect,
        // added to the threads' state, for the totals).
        for (const c of clients) c.stop();
        for (const c of clients) await settle(`client ${c.id} to catch up`, () => exact(c), () => identity(c));
        for (const c of clients) await leaveQuietly(c.tc);
        for (const c of clients) await c.tc.close();
        gone.push(...clients.splice(0));
        story.push(`phase ${p}: every client leaves`);
      }
      await settle('the worker to see the clients', () => recorder.stats().clients === clients.length, () => recorder.stats());

      const before = recorder.stats();
      const recording = [...clients]; // a crash at the end of the phase cuts them, after its records
      let made = 0;
      const running: Promise<unknown>[] = [];
      for (let a = rng.int(1, 3); a > 0; a--) {
        const what = rng.next();
        if (what < 0.3) {
          const b = burst(rng, scale);
          recordBurst(here, b);
          made += b.n;
          addTotal(keyName(b.key, b.labels!), validIncrements(b));
          story.push(`phase ${p}: this thread records ${b.n} ${b.op} (invalid every ${b.invalidEvery})`);
          continue;
        }
        if (pool !== undefined && what < 0.5) {
          const tasks = Array.from({ length: rng.int(1, 6) }, () => rng.int(1, scale));
          for (const n of tasks) {
            made += n;
            addTotal(keyName('jobs', { kind: 'pool' }), n);
          }
          running.push(Promise.all(tasks.map((n) => pool.run({ n }))));
          story.push(`phase ${p}: the pool runs ${tasks.join('+')}`);
          continue;
        }
        const script: Step[] = [];
        for (let k = rng.int(1, 20); k > 0; k--) {
          const b = burst(rng, scale);
          made += b.n;
          addTotal(keyName(b.key, b.labels!), validIncrements(b));
          script.push(b, { do: 'sleep', ms: rng.int(0, 2) });
        }
        const end = rng.pick(linux ? (['exit', 'stuck', 'flushed-stuck', 'linger'] as const) : (['exit', 'linger'] as const));
        if (end === 'stuck' || end === 'flushed-stuck') {
          // Its last burst is never published by the thread itself: it blocks right after.
          const b = burst(rng, scale);
          script.push(b);
          made += b.n;
          addTotal(keyName(b.key, b.labels!), validIncrements(b));
          if (end === 'flushed-stuck') script.push({ do: 'flush' });
          script.push({ do: 'signal' }, { do: 'block' });
        }
        story.push(`phase ${p}: a thread records ${script.filter((s) => s.do === 'burst').map((s) => (s as { n: number }).n).join('+')} and ends ${end}`);
        const th = startThread(recorder, script, end === 'linger' ? 'linger' : 'exit');
        threads.push(th);
        running.push(
          end === 'exit' ? th.exited : end === 'linger' ? th.done.then(() => th.worker.terminate()) : th.signalled(script.length - 2).then(() => th.worker.terminate()),
        );
      }
      here.flush();
      await Promise.all(running);
      if (recording.length > 0) totalMade += made;
      for (const c of recording) c.made += made;
      // Everything is written: the worker may be in the middle of any round of it.
      const crashed = crashes && rng.next() < 0.35;
      if (crashed) {
        await new Promise((r) => setTimeout(r, rng.int(0, 12)));
        await crash(p);
      }
      // Every ring of this phase drained (a dead thread's unpublished records too) and released;
      // by a restarted worker too, each record once.
      await settle(
        'every record of the phase to be taken',
        () => {
          const s = recorder.stats();
          return s.attachedThreads === attached() && s.recorded + s.dropped.ringFull === totalMade;
        },
        () => ({ totalMade, stats: recorder.stats() }),
      );
      const after = recorder.stats();
      for (const c of recording) {
        c.ringFull += after.dropped.ringFull - before.dropped.ringFull;
        c.invalid += after.dropped.invalid - before.dropped.invalid;
      }
      if (replay && crashed) await checkTotals(`after the restart of phase ${p}`);
    }

    // Readers catch up (stuck ones stay stuck), then close() with its deadline.
    for (const c of clients) if (c.kind !== 'stuck') c.stop();
    for (const c of clients) if (c.kind !== 'stuck') await settle(`client ${c.id} to catch up`, () => exact(c), () => identity(c));
    if (replay) await checkTotals('at the end');
    await recorder.close();
    for (const c of clients) c.stop();
    await settle('every connection to be closed by the exporter', () => clients.every((c) => c.tc.closed), () => clients.map(identity));

    const s = recorder.stats();
    if (s.workerRestarts !== restarts) throw fail(`workerRestarts is ${s.workerRestarts}, the worker was killed ${restarts} times`, s);
    const all = [...gone, ...clients];
    let lostTotal = 0;
    let framesTotal = checkers.reduce((n, c) => n + splitFrames(c.buffer()).frames.length, 0);
    for (const c of all) {
      const i = identity(c);
      // Drops a client was told of are never more than it lost; what it was not told of is its queue's.
      const lost = c.made - (i.got.metrics - c.replayed) - c.ringFull - c.invalid;
      if (i.got.dropped.client_queue > lost || i.got.dropped.ring_full > c.ringFull || i.got.dropped.invalid > c.invalid) {
        throw fail(`client ${c.id} was told of more drops than it had`, i);
      }
      // A connection the crash cut lost what the dead worker held for it: never more than made.
      if (c.cut ? i.accounted > c.made : c.kind !== 'stuck' && !exact(c)) throw fail(`client ${c.id}: received + reported drops != made`, i);
      lostTotal += lost;
      framesTotal += splitFrames(c.tc.buffer()).frames.length;
    }
    // A crash loses, uncounted, what the dead worker held for its clients; and frames it wrote
    // just before may be in no published figure.
    if (restarts === 0 ? lostTotal !== s.dropped.clientQueue : lostTotal < s.dropped.clientQueue) {
      throw fail(`clients lost ${lostTotal} frames but dropped.clientQueue is ${s.dropped.clientQueue}`, { s, clients: all.map(identity) });
    }
    if (restarts === 0 ? framesTotal !== s.framesSent : framesTotal < s.framesSent) {
      throw fail(`clients received ${framesTotal} whole frames but framesSent is ${s.framesSent}`, { s, clients: all.map(identity) });
    }
    log(`seed ${seed}: ${story.length - 1} events, ${totalMade} records, ${all.length} clients, ${restarts} restarts, ${exactChecks} exact checks of the totals; ringFull ${s.dropped.ringFull}, clientQueue ${s.dropped.clientQueue}, invalid ${s.dropped.invalid}`);
  } finally {
    for (const c of [...gone, ...clients]) {
      c.stop();
      await c.tc.close();
    }
    for (const c of checkers) await c.close();
    await Promise.all(threads.map((th) => th.worker.terminate()));
    await pool?.destroy();
    await recorder.close();
  }
}

test(`the accounting identity holds for every client in ${CASES} random mixes (seeds from ${BASE_SEED})`, async (t) => {
  for (let i = 0; i < CASES; i++) await runCase(BASE_SEED + i, (s) => t.diagnostic(s));
  assert.ok(CASES > 0);
});
