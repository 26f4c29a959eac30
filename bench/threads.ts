// Threads: a piscina pool of 1, 2 and 4 threads records into one exporter with a client
// connected. Per-thread hot-path ns/op (bursts of half a ring, each after a pause so the ring
// starts empty), then a 2 s flood from every thread: events/s made and received.
import { Piscina } from 'piscina';
import { TcpBuilder } from '../src/index.js';
import { withMetrics } from '../src/piscina.js';
import { sleep, summary, tick } from './measure.js';
import { Sink } from './sink.js';

export interface ThreadsResult {
  threads: number;
  nsPerOpMedian: number;
  nsPerOpMin: number;
  madePerSec: number;
  receivedPerSec: number;
  ringFull: number;
}

export async function runThreads(counts: number[], seconds: number): Promise<ThreadsResult[]> {
  const out: ThreadsResult[] = [];
  const bufferSize = 65_536;
  for (const threads of counts) {
    const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').bufferSize(bufferSize).build();
    const sink = await Sink.start({ port: (recorder.address as { port: number }).port, clients: 1, slow: -1, probeMinLength: 1e9 });
    const pool = new Piscina(withMetrics(recorder, { filename: new URL('./threads-task.js', import.meta.url).href, minThreads: threads, maxThreads: threads }));
    try {
      while (recorder.stats().clients !== 1) await tick();
      const burst = () => Promise.all(Array.from({ length: threads }, () => pool.run({ n: bufferSize / 2, pauseMs: 20 }) as Promise<number>));
      for (let i = 0; i < 3; i++) await burst(); // warm up the threads' code
      const ns: number[] = [];
      for (let i = 0; i < 8; i++) ns.push(...(await burst()));
      const s = summary(ns);

      const before = recorder.stats();
      const r0 = (await sink.report()).frames[0]!;
      const t0 = performance.now();
      let made = 0;
      const end = t0 + seconds * 1000;
      const loop = async () => {
        while (performance.now() < end) {
          await pool.run({ n: 200_000, pauseMs: 0 });
          made += 200_000;
        }
      };
      await Promise.all(Array.from({ length: threads }, loop));
      const producedMs = performance.now() - t0;
      await sleep(300); // let delivery finish
      const received = (await sink.report()).frames[0]! - r0;
      out.push({
        threads,
        nsPerOpMedian: s.median,
        nsPerOpMin: s.min,
        madePerSec: (made / producedMs) * 1000,
        receivedPerSec: (received / (performance.now() - t0)) * 1000,
        ringFull: recorder.stats().dropped.ringFull - before.dropped.ringFull,
      });
    } finally {
      await pool.destroy();
      await sink.close();
      await recorder.close();
    }
  }
  return out;
}
