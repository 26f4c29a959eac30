// Test helpers: a real TCP client that collects and decodes what the exporter sends.
import { fromBinary } from '@bufbuild/protobuf';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { spawnSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { EventSchema, type Event } from '../src/gen/event_pb.js';
import { hostOf } from '../src/app/recorder.js';
import { TcpBuilder, type BoundAddress, type TcpRecorder } from '../src/index.js';
import type { HistogramState } from '../src/client/index.js';
import type { Step } from './fixtures/script-thread.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** Splits a byte stream into length-delimited frames; reads varints by hand (no protobuf-es). */
export function splitFrames(buf: Uint8Array): { frames: Uint8Array[]; rest: number } {
  const frames: Uint8Array[] = [];
  let pos = 0;
  while (pos < buf.length) {
    let len = 0;
    let shift = 0;
    let p = pos;
    let complete = false;
    while (p < buf.length) {
      const b = buf[p++]!;
      len += (b & 0x7f) * 2 ** shift;
      shift += 7;
      if (b < 0x80) {
        complete = true;
        break;
      }
    }
    if (!complete || p + len > buf.length) break;
    frames.push(buf.subarray(p, p + len));
    pos = p + len;
  }
  return { frames, rest: buf.length - pos };
}

/** A client on a real socket: keeps every byte, decodes on demand. */
export class TestClient {
  readonly chunks: Buffer[] = [];
  bytes = 0;
  closed = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.bytes += d.length;
    });
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  static connect(address: BoundAddress): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const socket = 'path' in address ? connect(address.path) : connect(address.port, address.host);
      socket.once('connect', () => resolve(new TestClient(socket)));
      socket.once('error', reject);
    });
  }

  /** Over TLS: resolves once the handshake is done, rejects if it fails. */
  static connectTls(address: { host: string; port: number }, options: ConnectionOptions): Promise<TestClient> {
    return new Promise((resolve, reject) => {
      const socket = tlsConnect({ host: address.host, port: address.port, ...options });
      socket.once('secureConnect', () => resolve(new TestClient(socket)));
      socket.once('error', reject);
    });
  }

  /** All bytes so far. */
  buffer(): Buffer {
    return Buffer.concat(this.chunks);
  }

  /** Raw frames (without their length prefix), every one. */
  allFrames(): Uint8Array[] {
    return splitFrames(this.buffer()).frames;
  }

  /**
   * Raw frames but those of the exporter's fill levels (see {@link isFillLevel}): what the app
   * recorded, its metadata, and the loss reports.
   */
  frames(): Uint8Array[] {
    return this.allFrames().filter((f) => !isFillLevelFrame(f));
  }

  /** {@link frames}, decoded with the generated schema. */
  events(): Event[] {
    return this.allEvents().filter((e) => !isFillLevel(e));
  }

  /** Every frame, decoded with the generated schema. */
  allEvents(): Event[] {
    return this.allFrames().map((f) => fromBinary(EventSchema, f));
  }

  metrics(): Event[] {
    return this.events().filter((e) => e.event.case === 'metric');
  }

  close(): Promise<void> {
    if (this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      this.socket.destroy();
    });
  }
}

/** What a client makes of its stream: counter totals and current gauge values, by name. */
export function view(events: Event[]): { counters: Record<string, number>; gauges: Record<string, number>; histograms: number } {
  const counters: Record<string, number> = {};
  const gauges: Record<string, number> = {};
  let histograms = 0;
  for (const e of events) {
    if (e.event.case !== 'metric') continue;
    const m = e.event.value;
    const v = m.value;
    if (v.case === 'counter') counters[m.name] = (counters[m.name] ?? 0) + Number(v.value.value);
    else if (v.case === 'histogram') histograms++;
    else if (v.case === 'gauge') {
      const g = v.value.value;
      gauges[m.name] = g.case === 'absolute' ? g.value : (gauges[m.name] ?? 0) + (g.case === 'increment' ? g.value : -g.value!);
    }
  }
  return { counters, gauges, histograms };
}

/** Polls `cond` (which may be async) until it holds; fails after `ms` with `what` (and `state()`, if given). */
export async function waitFor(what: string, cond: () => boolean | Promise<boolean>, ms = 5000, state?: () => unknown): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}${state ? `: ${JSON.stringify(state())}` : ''}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** An exporter on a free loopback port. */
export function startExporter(configure: (b: TcpBuilder) => TcpBuilder = (b) => b): Promise<TcpRecorder> {
  return configure(new TcpBuilder().listenAddress('127.0.0.1:0')).build();
}

/** An exporter with one client connected (the recorder knows about it). */
export async function withClient(
  configure?: (b: TcpBuilder) => TcpBuilder,
): Promise<{ recorder: TcpRecorder; client: TestClient }> {
  const recorder = await startExporter(configure);
  const client = await TestClient.connect(recorder.address);
  await waitFor('the client to be registered', () => recorder.stats().clients === 1);
  return { recorder, client };
}

/** The `protoc` binary, or undefined (tests then skip with a printed reason). */
export function protoc(): string | undefined {
  const r = spawnSync('protoc', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? 'protoc' : undefined;
}

/** Decodes one `Event` with `protoc --decode`, independently of protobuf-es. */
export function protocDecode(frame: Uint8Array, protocol: 'seed' | 'observer-0.11' = 'seed'): string {
  const [dir, file] = protocol === 'seed' ? ['seed', 'event.proto'] : ['observer-0.11', 'observer_event.proto'];
  const r = spawnSync(
    'protoc',
    ['--decode=event.proto.Event', `-I${ROOT}/proto/${dir}`, '-I/usr/include', file],
    { input: frame, encoding: 'utf8' },
  );
  if (r.status !== 0) throw new Error(`protoc --decode failed: ${r.stderr}`);
  return r.stdout;
}

export const NO_PROTOC = 'protoc not found (install Debian packages protobuf-compiler and libprotobuf-dev); independent decoding skipped';

/** The gauges of the exporter's fill levels (self metrics), which every client gets while records move. */
export const FILL_METRICS: ReadonlySet<string> = new Set(['metrics_exporter_tcp_ring_peak', 'metrics_exporter_tcp_client_queue_peak', 'metrics_exporter_tcp_buffer_size']);

/**
 * A frame of the exporter's fill levels (their metadata, or a value). Most tests look at what the
 * app recorded, and at the loss reports; fill levels have tests of their own.
 */
export function isFillLevel(e: Event): boolean {
  return (e.event.case === 'metric' || e.event.case === 'metadata') && FILL_METRICS.has(e.event.value.name);
}

/**
 * {@link isFillLevel} on a raw frame, without decoding it all: an `Event` (either wire format)
 * holds its metadata or metric (field 1 or 2) whose first field is the name.
 */
export function isFillLevelFrame(f: Uint8Array): boolean {
  if (f[0] !== 0x0a && f[0] !== 0x12) return false;
  let p = 1;
  while (p < f.length && f[p]! >= 0x80) p++;
  p++; // past the last byte of the message's length
  if (f[p] !== 0x0a) return false;
  const n = f[p + 1]; // the fill levels' names are shorter than 128 bytes: one byte of length
  if (n === undefined || n >= 0x80 || p + 2 + n > f.length) return false;
  return FILL_METRICS.has(Buffer.from(f.buffer, f.byteOffset + p + 2, n).toString('latin1'));
}

/**
 * Whether the last fill levels `client` was told are all 0 (every ring empty, its queue empty):
 * the exporter then sends it no more until records move again. A client about to leave waits for
 * this, so that no report is on its way to a socket closing (one would count in `framesSent`
 * and never be read).
 */
export function fillSettled(client: TestClient): boolean {
  return Object.values(lastFillLevels(client)).every((v) => v === 0);
}

/** The last value a client got of each fill-level gauge (but the buffer size), by name and thread. */
export function lastFillLevels(client: TestClient): Record<string, number> {
  const last: Record<string, number> = {};
  for (const e of client.allEvents()) {
    if (e.event.case !== 'metric' || !isFillLevel(e)) continue;
    const m = e.event.value;
    if (m.name === 'metrics_exporter_tcp_buffer_size' || m.value.case !== 'gauge') continue;
    last[`${m.name}${m.labels.thread === undefined ? '' : `{${m.labels.thread}}`}`] = m.value.value.value.value ?? 0;
  }
  return last;
}

/** The counter the exporter sends each client about what that client lost (issue: loss in-band). */
export const DROPPED_METRIC = 'metrics_exporter_tcp_dropped';

/** What one client got: the app's metric frames, and the drops the exporter reported to it. */
export interface Tally {
  metrics: number;
  dropped: { ring_full: number; client_queue: number; invalid: number };
}

/** Counts a client's metric frames (not the in-band drop counter) and sums its drop reports. */
export function tally(events: Event[]): Tally {
  const t: Tally = { metrics: 0, dropped: { ring_full: 0, client_queue: 0, invalid: 0 } };
  for (const e of events) {
    if (e.event.case !== 'metric') continue;
    const m = e.event.value;
    if (m.name !== DROPPED_METRIC) {
      t.metrics++;
      continue;
    }
    const reason = m.labels.reason as keyof Tally['dropped'];
    assert.ok(reason in t.dropped && m.value.case === 'counter', `a well-formed drop report: ${JSON.stringify(m.labels)}`);
    t.dropped[reason] += Number(m.value.value.value);
  }
  return t;
}

/** What a script thread tells the parent at a `signal` or `report` step. */
export interface StepMessage {
  step: number;
  /** `report`: the records that passed the no-client check on that thread. */
  made?: number;
}

/** A thread running test/fixtures/script-thread.js. */
export interface ScriptThread {
  readonly worker: Worker;
  /** Settles when the thread has exited (listened for from the start, so never missed). */
  readonly exited: Promise<number>;
  /** Resolves when the thread has run its whole script. */
  readonly done: Promise<void>;
  /** Resolves when the thread reaches its `signal` or `report` step number `step`. */
  signalled(step: number): Promise<StepMessage>;
}

export function startThread(recorder: TcpRecorder, script: Step[], end: 'exit' | 'linger' = 'exit'): ScriptThread {
  const worker = new Worker(new URL('./fixtures/script-thread.js', import.meta.url), {
    workerData: { connector: recorder.connector(), script, end },
  });
  const exited = new Promise<number>((r) => worker.once('exit', r));
  const seen = new Map<number, StepMessage>();
  const waiting = new Map<number, (m: StepMessage) => void>();
  let finished: () => void;
  const done = new Promise<void>((r) => (finished = r));
  worker.on('message', (m: Partial<StepMessage> & { done?: boolean }) => {
    if (m.done) finished();
    if (m.step === undefined) return;
    seen.set(m.step, m as StepMessage);
    waiting.get(m.step)?.(m as StepMessage);
  });
  worker.on('error', (err) => {
    throw err;
  });
  return {
    worker,
    exited,
    done,
    signalled: (step) => seen.get(step) !== undefined ? Promise.resolve(seen.get(step)!) : new Promise((r) => waiting.set(step, r)),
  };
}

/** A histogram aggregation that keeps every value, to see what a series model hands it. */
export class Values implements HistogramState {
  values: number[] = [];
  record(v: number): void {
    this.values.push(v);
  }
  reset(): void {
    this.values = [];
  }
}

setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

/** What one measured run of a loop did to this thread's heap, in bytes. */
export interface HeapCost {
  /** Heap used after the loop minus before it, read before any GC could run. */
  allocated: number;
  /** Heap used after a full collection minus before the loop (also after one). */
  grew: number;
}

/**
 * Measures a synchronous loop's heap cost `attempts` times and returns the least of each figure,
 * with every run for a diagnostic. The least is the loop's own: one run can also hold code that
 * V8 compiled on another thread and installs on this one, or a deoptimisation and its new code
 * (the forced collections themselves deoptimise code whose maps they free: `--trace-deopt` says
 * "weak objects"; 668 KB once in CI), while a loop that allocates per call does so in every run.
 */
export function heapCost(loop: () => void, attempts = 3): HeapCost & { runs: HeapCost[] } {
  const afterGc = (): number => {
    collect();
    collect();
    return process.memoryUsage().heapUsed;
  };
  const runs: HeapCost[] = [];
  for (let i = 0; i < attempts; i++) {
    const start = afterGc();
    loop();
    const allocated = process.memoryUsage().heapUsed - start;
    runs.push({ allocated, grew: afterGc() - start });
  }
  return {
    allocated: Math.min(...runs.map((r) => r.allocated)),
    grew: Math.min(...runs.map((r) => r.grew)),
    runs,
  };
}

/** Connects to `address`, retrying while nothing listens there yet (a worker restarting). */
export async function waitForConnect(address: BoundAddress): Promise<TestClient> {
  for (let i = 0; ; i++) {
    try {
      return await TestClient.connect(address);
    } catch (err) {
      if (i > 500) throw err;
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}

/** Ends the exporter's transport worker as a crash would (no close() asked), and waits until the host has noticed. */
export async function crashWorker(recorder: TcpRecorder): Promise<void> {
  const host = hostOf(recorder);
  await waitFor('the worker to serve (one that dies while starting is not a restart)', () => host.serving, 10_000);
  const before = recorder.stats().workerRestarts;
  await host.thread.terminate();
  await waitFor('the host to restart the worker', () => recorder.stats().workerRestarts === before + 1, 10_000);
}

/**
 * `client` reads nothing until the exporter has closed, past its deadline, with 10 000 frames of
 * 600 bytes to deliver: each frame reaches it whole and counts in `framesSent`, or counts as
 * dropped, once (one may reach it cut at the end).
 */
export async function closePastDeadline(recorder: TcpRecorder, client: TestClient, log: (s: string) => void): Promise<void> {
  client.socket.pause(); // reads nothing until the exporter has closed
  const c = recorder.counter({ name: 'bulk', labels: { pad: 'p'.repeat(600) } });
  const made = 10_000;
  for (let i = 0; i < made; i++) c.increment();
  await recorder.close();
  const closed = new Promise((r) => client.socket.once('close', r));
  client.socket.resume();
  await closed;
  const s = recorder.stats();
  const { frames, rest } = splitFrames(client.buffer());
  log(`received ${frames.length} whole frames and ${rest} bytes of a cut one; framesSent ${s.framesSent}, clientQueue ${s.dropped.clientQueue}`);
  assert.ok(s.dropped.clientQueue > 0, 'the deadline passed with frames undelivered');
  assert.equal(frames.length, s.framesSent, 'framesSent counts the frames the client got whole');
  assert.equal(s.framesSent + s.dropped.clientQueue, made, 'each frame is sent or dropped, once');
}

/** The exporter's warnings (codes MTCP_*) emitted while `fn` runs, and just after. */
export async function warningsDuring(fn: () => Promise<void>): Promise<{ code: string; message: string }[]> {
  const seen: { code: string; message: string }[] = [];
  const on = (w: Error & { code?: string }) => {
    if (w.code?.startsWith('MTCP_')) seen.push({ code: w.code, message: w.message });
  };
  process.on('warning', on);
  try {
    await fn();
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    process.off('warning', on);
  }
  return seen;
}
