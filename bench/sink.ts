// A worker thread that plays N TCP clients of the exporter: it counts whole frames per client
// and, for probe frames (gauges whose value is the time they were recorded), the latency from
// record to receipt, and the exporter's in-band fill levels (the seed format's). Same process as
// the producer, so both read the same clock.
import { connect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { parentPort, Worker, workerData } from 'node:worker_threads';
import { QUEUE_PEAK_METRIC, RING_PEAK_METRIC } from 'metrics-exporter-tcp/client';

export interface SinkInit {
  readonly port: number;
  readonly clients: number;
  /** Index of a client that reads slowly (one read every 10 ms), or -1. */
  readonly slow: number;
  /** Frames at least this long are latency probes (their last 8 bytes are a double). */
  readonly probeMinLength: number;
  /** Connect over TLS, trusting this authority (PEM). */
  readonly tlsCa?: string;
}

export interface SinkReport {
  readonly frames: number[];
  readonly bytes: number[];
  /** Record-to-receipt latencies (ms) of the probes seen since the last report. */
  readonly latencies: number[];
  /**
   * Per client, the largest ring peak and client-queue peak the exporter reported to it in-band
   * (its fill levels), since the sink started.
   */
  readonly ringPeak: number[];
  readonly queuePeak: number[];
}

export type SinkRequest = { t: 'report' } | { t: 'close' };

const MAX_SAMPLES = 200_000;

/** Latency samples shared by all clients of the sink, handed over at each report. */
class Samples {
  list: number[] = [];
  add(ms: number): void {
    if (this.list.length < MAX_SAMPLES) this.list.push(ms);
  }
  take(): number[] {
    const l = this.list;
    this.list = [];
    return l;
  }
}

/** What a fill-level frame holds after its outer tag and length: the metric's name field. */
const nameField = (name: string): Buffer => Buffer.concat([Buffer.from([0x0a, name.length]), Buffer.from(name)]);
const RING_PEAK = nameField(RING_PEAK_METRIC);
const QUEUE_PEAK = nameField(QUEUE_PEAK_METRIC);

/** Whether the frame of `len` bytes at `at` in `chunk` (all of it there) holds `field` after its tag and length. */
const holds = (chunk: Buffer, at: number, len: number, field: Buffer): boolean =>
  len >= 2 + field.length && chunk.compare(field, 0, field.length, at + 2, at + 2 + field.length) === 0;

class Counter {
  frames = 0;
  bytes = 0;
  ringPeak = 0;
  queuePeak = 0;
  private need = 0;
  private len = 0;
  private shift = 0;

  constructor(private readonly samples: Samples, private readonly probeMin: number) {}

  /** Walks the varint length prefixes; a frame counts once all its bytes are in. */
  take(chunk: Buffer): void {
    this.bytes += chunk.length;
    const now = performance.timeOrigin + performance.now();
    let p = 0;
    while (p < chunk.length) {
      if (this.need > 0) {
        const n = Math.min(this.need, chunk.length - p);
        p += n;
        this.need -= n;
        if (this.need === 0) this.frames++;
        continue;
      }
      const b = chunk[p++]!;
      this.len += (b & 0x7f) * 2 ** this.shift;
      this.shift += 7;
      if (b >= 0x80) continue;
      this.need = this.len;
      this.len = 0;
      this.shift = 0;
      if (this.need >= this.probeMin && p + this.need <= chunk.length) {
        this.samples.add(now - chunk.readDoubleLE(p + this.need - 8));
      } else if (this.need < 128 && p + this.need <= chunk.length && chunk[p] === 0x12) {
        // A fill level (a gauge set: its value is the frame's last 8 bytes)? Only whole ones are
        // read: they are a few per 100 ms, and a frame split across reads is rare.
        if (holds(chunk, p, this.need, RING_PEAK)) this.ringPeak = Math.max(this.ringPeak, chunk.readDoubleLE(p + this.need - 8));
        else if (holds(chunk, p, this.need, QUEUE_PEAK)) this.queuePeak = Math.max(this.queuePeak, chunk.readDoubleLE(p + this.need - 8));
      }
      if (this.need === 0) this.frames++;
    }
  }
}

if (parentPort !== null && workerData?.sink === true) {
  const init = workerData.init as SinkInit;
  const port = parentPort;
  const samples = new Samples();
  const sockets: Socket[] = [];
  const counters: Counter[] = [];
  let connected = 0;
  for (let i = 0; i < init.clients; i++) {
    const counter = new Counter(samples, init.probeMinLength);
    counters.push(counter);
    const ready = (): void => {
      if (++connected === init.clients) port.postMessage({ t: 'ready' });
    };
    const s: Socket =
      init.tlsCa === undefined
        ? connect(init.port, '127.0.0.1', ready)
        : tlsConnect({ port: init.port, host: '127.0.0.1', ca: init.tlsCa, servername: 'localhost' }, ready);
    s.on('error', () => {});
    s.on('data', (d: Buffer) => {
      counter.take(d);
      if (i === init.slow) {
        s.pause();
        setTimeout(() => s.resume(), 10);
      }
    });
    sockets.push(s);
  }
  port.on('message', (m: SinkRequest) => {
    if (m.t === 'report') {
      const report: SinkReport = {
        frames: counters.map((c) => c.frames),
        bytes: counters.map((c) => c.bytes),
        latencies: samples.take(),
        ringPeak: counters.map((c) => c.ringPeak),
        queuePeak: counters.map((c) => c.queuePeak),
      };
      port.postMessage({ t: 'report', report });
    } else if (m.t === 'close') {
      for (const s of sockets) s.destroy();
      port.close();
    }
  });
}

/** The bench's handle on a sink thread. */
export class Sink {
  private constructor(private readonly worker: Worker) {}

  static async start(init: SinkInit): Promise<Sink> {
    const worker = new Worker(new URL(import.meta.url), { workerData: { sink: true, init } });
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
    });
    return new Sink(worker);
  }

  /** What the clients got so far; rejects if the sink thread failed (a bench must not hang on it). */
  report(): Promise<SinkReport> {
    return new Promise((resolve, reject) => {
      const failed = (err: unknown) => reject(err instanceof Error ? err : new Error(`the sink thread exited (${String(err)})`));
      this.worker.once('error', failed);
      this.worker.once('exit', failed);
      this.worker.once('message', (m: { report: SinkReport }) => {
        this.worker.off('error', failed);
        this.worker.off('exit', failed);
        resolve(m.report);
      });
      this.worker.postMessage({ t: 'report' } satisfies SinkRequest);
    });
  }

  async close(): Promise<void> {
    const exited = new Promise((r) => this.worker.once('exit', r));
    this.worker.postMessage({ t: 'close' } satisfies SinkRequest);
    await exited;
  }
}
