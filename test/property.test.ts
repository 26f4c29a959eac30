// The accounting identity under random mixes of everything at once: threads that exit, are
// terminated while stuck in a synchronous loop, or linger; fast, slow and stuck clients that
// come and go; full rings; invalid values; close() deadlines. For every client, every time:
//   app frames received + drops reported to it (ring_full, client_queue, invalid)
//     = records made while it was connected,
// and over all clients: frames received whole = stats().framesSent, and their lost frames =
// stats().dropped.clientQueue. A failing case prints its seed; replay it with
// MTCP_SEED=<seed> MTCP_CASES=1 npm test.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { attach, type Recording, type TcpRecorder } from '../src/index.js';
import type { Step } from './fixtures/script-thread.js';
import { splitFrames, startExporter, startThread, tally, TestClient, waitFor, type ScriptThread } from './helpers.js';

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

function connectClient(recorder: TcpRecorder, id: number, kind: ClientKind): Promise<Watched> {
  return TestClient.connect(recorder.address).then((tc) => {
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
      stop: () => {
        stopped = true;
        clearInterval(timer);
        tc.socket.resume();
      },
    };
  });
}

/** What a client got and was told, against what it should have. */
function identity(c: Watched) {
  const t = tally(c.tc.events());
  const accounted = t.metrics + t.dropped.ring_full + t.dropped.client_queue + t.dropped.invalid;
  return { id: c.id, kind: c.kind, made: c.made, ringFull: c.ringFull, invalid: c.invalid, got: t, accounted };
}

function exact(c: Watched): boolean {
  const i = identity(c);
  return i.accounted === c.made && i.got.dropped.ring_full === c.ringFull && i.got.dropped.invalid === c.invalid;
}

async function runCase(seed: number, log: (s: string) => void): Promise<void> {
  const rng = generator(seed);
  const bufferSize = rng.pick([16, 256, 1024, 4096]);
  const closeTimeoutMs = rng.pick([0, 50, 300]);
  const recorder = await startExporter((b) => b.bufferSize(bufferSize).closeTimeoutMs(closeTimeoutMs));
  const here = attach(recorder.connector()); // this thread's records go through an attached ring too
  const clients: Watched[] = [];
  const gone: Watched[] = [];
  const threads: ScriptThread[] = [];
  let nextId = 0;
  let totalMade = 0; // records made while a client was connected
  const story: string[] = [`bufferSize ${bufferSize}, closeTimeoutMs ${closeTimeoutMs}`];
  const fail = (what: string, state?: unknown) => new Error(`seed ${seed}: ${what}\n${story.join('\n')}\n${JSON.stringify(state)}`);
  const settle = async (what: string, cond: () => boolean, state: () => unknown, ms = 15_000) => {
    try {
      await waitFor(what, cond, ms);
    } catch {
      throw fail(`timed out waiting for ${what}`, state());
    }
  };
  try {
    const phases = rng.int(3, 5);
    for (let p = 0; p < phases; p++) {
      // Clients come and go between phases, once everything before has been handed to them.
      if (clients.length > 0 && rng.next() < 0.4) {
        const leaving = clients.filter((c) => c.kind !== 'stuck');
        if (leaving.length > 0) {
          const c = rng.pick(leaving);
          c.stop();
          await settle(`client ${c.id} to be told everything before it leaves`, () => exact(c), () => identity(c));
          await c.tc.close();
          clients.splice(clients.indexOf(c), 1);
          gone.push(c);
          story.push(`phase ${p}: client ${c.id} (${c.kind}) leaves`);
        }
      }
      if (clients.length === 0 || rng.next() < 0.5) {
        for (let n = rng.int(1, 2); n > 0; n--) {
          const kind = rng.pick(['fast', 'fast', 'slow', 'stuck'] as const);
          clients.push(await connectClient(recorder, nextId++, kind));
          story.push(`phase ${p}: client ${nextId - 1} (${kind}) connects`);
        }
        // Connected as far as the worker knows (a client it has not accepted yet gets nothing).
        await settle('the worker to accept the clients', () => recorder.stats().clients === clients.length, () => recorder.stats());
      }
      if (rng.next() < 0.15) {
        // A phase with no client at all: nothing recorded, nothing counted.
        for (const c of clients) c.stop();
        for (const c of clients) await settle(`client ${c.id} to catch up`, () => exact(c), () => identity(c));
        for (const c of clients) await c.tc.close();
        gone.push(...clients.splice(0));
        story.push(`phase ${p}: every client leaves`);
      }
      await settle('the worker to see the clients', () => recorder.stats().clients === clients.length, () => recorder.stats());

      const before = recorder.stats();
      let made = 0;
      const running: Promise<unknown>[] = [];
      for (let a = rng.int(1, 3); a > 0; a--) {
        if (rng.next() < 0.4) {
          const b = burst(rng, bufferSize);
          recordBurst(here, b);
          made += b.n;
          story.push(`phase ${p}: this thread records ${b.n} ${b.op} (invalid every ${b.invalidEvery})`);
          continue;
        }
        const script: Step[] = [];
        for (let k = rng.int(1, 20); k > 0; k--) {
          const b = burst(rng, bufferSize);
          made += b.n;
          script.push(b, { do: 'sleep', ms: rng.int(0, 2) });
        }
        const end = rng.pick(linux ? (['exit', 'stuck', 'flushed-stuck', 'linger'] as const) : (['exit', 'linger'] as const));
        if (end === 'stuck' || end === 'flushed-stuck') {
          // Its last burst is never published by the thread itself: it blocks right after.
          script.push(burst(rng, bufferSize));
          made += (script.at(-1) as { n: number }).n;
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
      if (clients.length > 0) totalMade += made;
      // Every ring of this phase drained (a dead thread's unpublished records too) and released.
      await settle(
        'every record of the phase to be taken',
        () => {
          const s = recorder.stats();
          return s.attachedThreads === 1 && s.recorded + s.dropped.ringFull === totalMade;
        },
        () => ({ totalMade, stats: recorder.stats() }),
      );
      const after = recorder.stats();
      for (const c of clients) {
        c.made += made;
        c.ringFull += after.dropped.ringFull - before.dropped.ringFull;
        c.invalid += after.dropped.invalid - before.dropped.invalid;
      }
    }

    // Readers catch up (stuck ones stay stuck), then close() with its deadline.
    for (const c of clients) if (c.kind !== 'stuck') c.stop();
    for (const c of clients) if (c.kind !== 'stuck') await settle(`client ${c.id} to catch up`, () => exact(c), () => identity(c));
    await recorder.close();
    for (const c of clients) c.stop();
    await settle('every connection to be closed by the exporter', () => clients.every((c) => c.tc.closed), () => clients.map(identity));

    const s = recorder.stats();
    const all = [...gone, ...clients];
    let lostTotal = 0;
    let framesTotal = 0;
    for (const c of all) {
      const i = identity(c);
      // Drops a client was told of are never more than it lost; what it was not told of is its queue's.
      const lost = c.made - i.got.metrics - c.ringFull - c.invalid;
      if (i.got.dropped.client_queue > lost || i.got.dropped.ring_full > c.ringFull || i.got.dropped.invalid > c.invalid) {
        throw fail(`client ${c.id} was told of more drops than it had`, i);
      }
      if (c.kind !== 'stuck' && !exact(c)) throw fail(`client ${c.id}: received + reported drops != made`, i);
      lostTotal += lost;
      framesTotal += splitFrames(c.tc.buffer()).frames.length;
    }
    if (lostTotal !== s.dropped.clientQueue) throw fail(`clients lost ${lostTotal} frames but dropped.clientQueue is ${s.dropped.clientQueue}`, { s, clients: all.map(identity) });
    if (framesTotal !== s.framesSent) throw fail(`clients received ${framesTotal} whole frames but framesSent is ${s.framesSent}`, { s, clients: all.map(identity) });
    log(`seed ${seed}: ${story.length - 1} events, ${totalMade} records, ${all.length} clients; ringFull ${s.dropped.ringFull}, clientQueue ${s.dropped.clientQueue}, invalid ${s.dropped.invalid}`);
  } finally {
    for (const c of [...gone, ...clients]) {
      c.stop();
      await c.tc.close();
    }
    await Promise.all(threads.map((th) => th.worker.terminate()));
    await recorder.close();
  }
}

test(`the accounting identity holds for every client in ${CASES} random mixes (seeds from ${BASE_SEED})`, async (t) => {
  for (let i = 0; i < CASES; i++) await runCase(BASE_SEED + i, (s) => t.diagnostic(s));
  assert.ok(CASES > 0);
});
