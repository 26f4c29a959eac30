// `npm run bench -- tune --rate R --burst B [--clients N]`: the buffer size for that workload on
// this machine, with what it costs: found from the fill levels the exporter reports in-band, by
// the rule the observer applies in production (recommendBufferSize), and confirmed lossless.
import { recommendBufferSize } from 'metrics-exporter-tcp/client';
import { RECORD_BYTES, ringSlots } from '../src/shared/layout.js';
import { fmt, table } from './measure.js';
import { runE2E, type E2EResult } from './e2e.js';

export interface TuneOptions {
  readonly rate: number;
  readonly burst: number;
  readonly clients: number;
  readonly seconds: number;
}

/** Average metric frame size of the bench mix, for the queue memory estimate. */
const FRAME_BYTES = 70;
/** The first run's size: large enough that it loses nothing, so that its peaks are the load's own. */
const MEASURE_SIZE = 1 << 20;
/** Sizes tried at most, measuring and confirming. */
const MAX_RUNS = 10;

export interface TuneResult {
  options: TuneOptions;
  tried: E2EResult[];
  recommended: number | null;
}

const lossless = (r: E2EResult) => r.ringFull === 0 && r.clientQueue === 0;

/**
 * The size a run's fill levels ask for: `recommendBufferSize` of the largest peak the exporter
 * reported (ring or client queue), the rule the observer applies to production traffic.
 */
const asks = (r: E2EResult) => recommendBufferSize(Math.max(r.ringPeak, r.queuePeak));

/**
 * Runs the load at a size that loses nothing and reads the peaks the exporter reports in-band;
 * then at the size they ask for, whose own peaks may ask for less (a smaller ring wakes the
 * worker sooner), until a size asks for itself or more. The smallest size that lost nothing and
 * whose peaks fit it twice over is confirmed by one more run.
 */
export async function runTune(o: TuneOptions, log: (s: string) => void): Promise<{ result: TuneResult; text: string }> {
  const tried: E2EResult[] = [];
  const run = async (bufferSize: number, what: string) => {
    const r = await runE2E({ bufferSize, load: o.rate, burst: o.burst, seconds: o.seconds, clients: o.clients, slowClient: false });
    tried.push(r);
    log(`  bufferSize ${bufferSize} (${what}): made ${r.made}, ring full ${r.ringFull}, client queue ${r.clientQueue}, ring peak ${r.ringPeak}, queue peak ${r.queuePeak}: asks for ${asks(r)}`);
    return r;
  };
  let recommended: number | null = null;
  let size = MEASURE_SIZE;
  while (tried.length < MAX_RUNS) {
    const r = await run(size, tried.length === 0 ? 'measuring' : 'trying');
    if (!lossless(r) || asks(r) > size) break; // the last size stands
    recommended = size;
    if (asks(r) === size) break;
    size = asks(r);
  }
  // One run must not decide: confirm, and take twice the size if it lost after all.
  while (recommended !== null && tried.length < MAX_RUNS) {
    const again = await run(recommended, 'confirming');
    if (lossless(again)) break;
    recommended = recommended < MEASURE_SIZE ? recommended * 2 : null;
  }
  const rows: (string | number)[][] = [['bufferSize', 'made/s', 'ring full', 'client queue', 'ring peak', 'queue peak', 'p50 ms', 'p99 ms', 'ring MiB', 'queue MiB/client']];
  for (const r of tried) {
    rows.push([
      r.bufferSize,
      fmt(r.madePerSec),
      r.ringFull,
      r.clientQueue,
      r.ringPeak,
      r.queuePeak,
      r.latencyP50Ms.toFixed(3),
      r.latencyP99Ms.toFixed(3),
      ((ringSlots(r.bufferSize) * RECORD_BYTES) / 2 ** 20).toFixed(2),
      ((r.bufferSize * FRAME_BYTES) / 2 ** 20).toFixed(2),
    ]);
  }
  const best = tried.filter((r) => r.bufferSize === recommended).at(-1);
  const verdict =
    recommended === null || best === undefined
      ? `Even bufferSize(${MEASURE_SIZE}) lost records at ${o.rate}/s with bursts of ${o.burst}: the exporter cannot keep up with this load on this machine.`
      : [
          `Recommended: .bufferSize(${recommended}) for ${fmt(o.rate)} records/s with bursts of ${o.burst} every 100 ms and ${o.clients} client(s).`,
          `  memory: ring ${((ringSlots(recommended) * RECORD_BYTES) / 1024).toFixed(0)} KiB per recording thread, plus up to ${((recommended * FRAME_BYTES) / 1024).toFixed(0)} KiB queued per client that falls behind`,
          `  latency record → client: p50 ${best.latencyP50Ms.toFixed(3)} ms, p99 ${best.latencyP99Ms.toFixed(3)} ms`,
        ].join('\n');
  return { result: { options: o, tried, recommended }, text: `${table(rows)}\n\n${verdict}` };
}
