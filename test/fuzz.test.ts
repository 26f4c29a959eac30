// Fuzzing what reads exporters' streams: the client's frame decoder (in process, and a real
// TcpClient fed by a loopback server) and the relay (garbage exporters beside a real one).
// Random, mutated and purposely broken streams (truncated, overlong or huge length prefixes,
// wrong wire types, invalid UTF-8, …) must never crash or hang a reader, never make it hold
// more than its frame limit, and must end the connection with a coded ClientError.
// Invalid UTF-8 in a string field is a DECODE error (proto3 strings must be UTF-8, as prost
// and C++ protobuf also insist), never replaced with U+FFFD.
// Each case has a seed; a failure names it: FUZZ_SEED=<seed> FUZZ_CASES=1 replays it.
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { DEFAULT_BUCKETS, startRelay } from 'metrics-exporter-tcp-relay';
import { ClientError, FrameDecoder, TcpClient, toClientEvent, type ClientEvent } from '../src/client/index.js';
import { baseSeed, chunks, fuzzCase, Rng, type FuzzCase } from './fuzz-input.js';
import { startExporter, waitFor } from './helpers.js';

const MAX_FRAME = 4096;
const CASES = Number(process.env.FUZZ_CASES ?? 300);
const BASE = baseSeed();
const cases = (n: number, maxFrameBytes = MAX_FRAME) => Array.from({ length: n }, (_, i) => fuzzCase(BASE + i, maxFrameBytes));
const replay = (c: FuzzCase) => `case ${c.seed} (${c.kind}, ${c.protocol}); replay: FUZZ_SEED=${c.seed} FUZZ_CASES=1`;

const OPS: Record<string, 'bigint' | 'number'> = {
  counterIncrement: 'bigint',
  counterSet: 'bigint',
  gaugeSet: 'number',
  gaugeIncrement: 'number',
  gaugeDecrement: 'number',
  histogramRecord: 'number',
};

/** What a client yields is always one of the typed shapes, whatever came in. */
function assertWellFormed(e: ClientEvent, where: string): void {
  assert.equal(typeof e.name, 'string', where);
  if (e.kind === 'metadata') {
    assert.ok(['counter', 'gauge', 'histogram'].includes(e.metricKind), where);
    for (const v of [e.unit, e.description]) assert.ok(v === undefined || typeof v === 'string', where);
    return;
  }
  assert.equal(e.kind, 'metric', where);
  for (const v of Object.values(e.labels)) assert.equal(typeof v, 'string', where);
  assert.equal(typeof e.op.value, OPS[e.op.type], where);
  if (typeof e.op.value === 'bigint') assert.ok(e.op.value >= 0n && e.op.value < 2n ** 64n, where);
}

/** Decodes `chunks` as a client does: frames, events, and the code it stops with. */
function decode(parts: Uint8Array[], c: FuzzCase): { frames: Uint8Array[]; events: ClientEvent[]; code: string | undefined } {
  const decoder = new FrameDecoder(MAX_FRAME);
  const frames: Uint8Array[] = [];
  let code: string | undefined;
  for (const part of parts) {
    try {
      decoder.push(part, frames);
    } catch (err) {
      assert.ok(err instanceof ClientError, `${replay(c)}: ${err}`);
      code = err.code;
      assert.throws(() => decoder.push(Uint8Array.of(0)), err, `${replay(c)}: the failure sticks`);
      break;
    }
    assert.ok(decoder.pendingBytes <= MAX_FRAME + 10, `${replay(c)}: holds ${decoder.pendingBytes} bytes`);
  }
  const events: ClientEvent[] = [];
  for (const frame of frames) {
    try {
      events.push(toClientEvent(frame, c.protocol));
    } catch (err) {
      assert.ok(err instanceof ClientError && err.code === 'DECODE', `${replay(c)}: ${err}`);
      code ??= 'DECODE';
      break;
    }
  }
  return { frames: frames.map((f) => Uint8Array.from(f)), events, code };
}

test('the frame decoder: any input, cut anywhere, gives the same frames and a coded end', () => {
  for (const c of cases(CASES * 10)) {
    const whole = decode([c.bytes], c);
    const cut = decode(chunks(new Rng(~c.seed), c.bytes), c);
    assert.deepEqual(cut.frames, whole.frames, `${replay(c)}: frames depend on where the stream was cut`);
    assert.equal(cut.code, whole.code, replay(c));
    for (const e of whole.events) assertWellFormed(e, replay(c));
    if (c.expect !== undefined) {
      assert.equal(whole.code, c.expect, replay(c));
      assert.equal(whole.events.length, c.validFrames, `${replay(c)}: the valid frames before the garbage are delivered`);
    }
  }
});

/** A loopback "exporter" that sends each connection the bytes `next()` gives, cut into random pieces. */
async function garbageServer(next: () => { bytes: Uint8Array; keepOpen: boolean; seed: number }): Promise<{ server: Server; address: string; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.on('error', () => {});
    const { bytes, keepOpen, seed } = next();
    void (async () => {
      for (const part of chunks(new Rng(seed), bytes)) {
        if (s.destroyed) return;
        s.write(part);
        await new Promise((r) => setImmediate(r));
      }
      if (!keepOpen) s.end();
    })();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, address: `127.0.0.1:${(server.address() as { port: number }).port}`, sockets };
}

async function closeServer(s: { server: Server; sockets: Set<Socket> }): Promise<void> {
  for (const socket of s.sockets) socket.destroy();
  await new Promise((r) => s.server.close(r));
}

/** `p`, or a failure after `ms`: nothing a client reads may make it hang. */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`hung: ${what}`)), ms)));
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

test('TcpClient over TCP: never crashes or hangs, stays within its frame limit, ends with a coded error', { timeout: 120_000 }, async () => {
  let current: FuzzCase | undefined;
  let serverSide: Socket | undefined;
  const srv = await garbageServer(() => ({ bytes: current!.bytes, keepOpen: current!.expect !== undefined, seed: current!.seed }));
  srv.server.on('connection', (s) => (serverSide = s));
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  try {
    for (const c of cases(CASES)) {
      current = c;
      serverSide = undefined;
      const client = new TcpClient(srv.address, { protocol: new Rng(c.seed).chance(0.5) ? 'auto' : c.protocol, maxFrameBytes: MAX_FRAME });
      const events: ClientEvent[] = [];
      let failure: unknown;
      await within(
        (async () => {
          try {
            for await (const e of client) events.push(e);
          } catch (err) {
            failure = err;
          }
        })(),
        5000,
        replay(c),
      ).finally(() => client.close());
      for (const e of events) assertWellFormed(e, replay(c));
      if (failure !== undefined) assert.ok(failure instanceof ClientError && ['FRAME_TOO_LARGE', 'BAD_LENGTH', 'DECODE', 'CONNECT'].includes(failure.code), `${replay(c)}: ${failure}`);
      if (c.expect !== undefined) {
        assert.equal((failure as ClientError | undefined)?.code, c.expect, replay(c));
        assert.equal(events.length, c.validFrames, `${replay(c)}: the valid frames before the garbage are delivered`);
        // The sender kept the connection open: the client is the one that closed it.
        await within(waitFor('the server side to close', () => serverSide?.closed === true, 5000), 6000, replay(c));
      }
    }
  } finally {
    await closeServer(srv);
  }
  gc?.();
  const grown = process.memoryUsage().heapUsed - heapBefore;
  assert.ok(grown < 32 * 1024 * 1024, `the heap grew by ${grown} bytes over ${CASES} cases`);
});

test('the relay: garbage exporters end with a logged coded error, and are not read again for a long while; the real one keeps flowing; series stay bounded', { timeout: 120_000 }, async (t) => {
  const good = await startExporter();
  t.after(() => good.close());
  const goodAddress = `127.0.0.1:${(good.address as { port: number }).port}`;
  // Broken on purpose (connection kept open), and mutated or random streams (closed, then
  // served again on every reconnect). The relay skips frames over its 1 MiB limit as they
  // stream, up to protobuf's 2 GiB: a longer length prefix is what ends a stream.
  const all = cases(CASES, 2 ** 31);
  const broken = all.filter((c) => c.expect !== undefined).slice(0, 12);
  const noisy = all.filter((c) => c.expect === undefined).slice(0, 6);
  const servers = await Promise.all([...broken, ...noisy].map((c) => garbageServer(() => ({ bytes: c.bytes, keepOpen: c.expect !== undefined, seed: c.seed }))));
  t.after(() => Promise.all(servers.map(closeServer)));
  const log = new PassThrough();
  let logged = '';
  log.on('data', (d) => (logged += d));
  const maxSeries = 200;
  const relay = await startRelay({
    connect: [goodAddress, ...servers.map((s) => s.address)],
    protocol: 'auto',
    prometheus: '127.0.0.1:0',
    otlpIntervalMs: 10_000,
    buckets: DEFAULT_BUCKETS,
    maxSeries,
    log,
    malformedRetryMs: 600_000, // not again within the test
  });
  t.after(() => relay.close());

  // The relay reads on several threads: its state is a snapshot, refreshed while we wait.
  let snap = await relay.snapshot();
  const refresh = setInterval(() => void relay.snapshot().then((s) => (snap = s)), 20);
  t.after(() => clearInterval(refresh));
  const stateOf = (address: string) => snap.exporters.find((e) => e.exporter === address)?.state;
  const failed = (i: number) => stateOf(servers[i]!.address) === 'malformed';
  await waitFor('every broken exporter disconnected', () => broken.every((_, i) => failed(i)), 20_000).catch((err: Error) => {
    throw new Error(`${err.message}: ${broken.filter((_, i) => !failed(i)).map(replay).join('; ')}`);
  });
  broken.forEach((c, i) => {
    const line = logged.split('\n').find((l) => l.startsWith(`relay: ${servers[i]!.address} sent a malformed stream`));
    assert.match(line ?? '', new RegExp(`sent a malformed stream \\(${c.expect}\\): .*; trying again in \\d+ s$`), `${replay(c)}\n${logged}`);
  });

  await waitFor('the relay connected to the real exporter', () => good.stats().clients === 1, 10_000);
  good.counter({ name: 'jobs', labels: { q: 'a' } }).increment(5);
  const { host, port } = relay.prometheus!.address as { host: string; port: number };
  let text = '';
  const end = Date.now() + 10_000;
  while (Date.now() < end && !/^jobs_total\{q="a",exporter="127\.0\.0\.1:\d+"\} 5$/m.test(text)) {
    text = await (await fetch(`http://${host}:${port}/metrics`)).text();
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.match(text, new RegExp(`^jobs_total\\{q="a",exporter="${goodAddress}"\\} 5$`, 'm'));
  snap = await relay.snapshot();
  assert.equal(stateOf(goodAddress), 'connected');
  const series = snap.exporters.flatMap((e) => e.series);
  assert.ok(series.length <= maxSeries, `${series.length} series`);
  // Nothing of a disconnected exporter is published.
  for (const s of series) assert.ok(!broken.some((_, i) => s.scope === servers[i]!.address), s.scope);
});
