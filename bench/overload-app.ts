// The overload rows of the hotpath section again, in a process of their own: one exporter with
// nobody connected (the early exit) and one with a small ring (bufferSize 1024) and a client
// reading, fed far faster than its worker drains it. The hotpath section's process holds a dozen
// exporters, their workers and readers, and the OpenTelemetry and prom-client registries; an app
// holds one exporter. Runs alternate between the two; prints one JSON line (`OverloadResult`).
//   node dist/bench/overload-app.js <runs> <calls a run>
import { TcpBuilder } from '../src/index.js';
import { loopFor, ownCpuNs, settled, summary, timeRun } from './measure.js';
import { Sink } from './sink.js';

/** Min and median of the runs, ns a call: wall time, and the app thread's own CPU (Linux). */
export interface OverloadFigures {
  wall: { min: number; median: number };
  cpu?: { min: number; median: number };
}

export interface OverloadResult {
  earlyExit: OverloadFigures;
  overload: OverloadFigures;
  /** Share of the overloaded calls that the ring dropped. */
  droppedShare: number;
}

const [runsArg = '11', callsArg = '2000000'] = process.argv.slice(2);
const runs = Number(runsArg);
const calls = Number(callsArg);
const labels = { route: '/users', status: '200' };
const idle = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
const full = await new TcpBuilder().listenAddress('127.0.0.1:0').bufferSize(1024).build();
const sink = await Sink.start({ port: (full.address as { port: number }).port, clients: 1, slow: -1, probeMinLength: 1e9 });
while (full.stats().clients !== 1) await new Promise((r) => setTimeout(r, 5));

const cases = [
  { c: idle.counter({ name: 'requests', labels }), loop: loopFor('t.increment()', 'early exit'), wall: [] as number[], cpu: [] as number[] },
  { c: full.counter({ name: 'requests', labels }), loop: loopFor('t.increment()', 'overload'), wall: [] as number[], cpu: [] as number[] },
];
let dropped = 0;
let made = 0;
// A warm-up run (not kept), then the runs.
for (let run = -1; run < runs; run++) {
  for (const [i, k] of cases.entries()) {
    await settled(full);
    const before = full.stats().dropped.ringFull;
    const cpu0 = ownCpuNs();
    const wall = timeRun(k.loop, k.c, calls);
    const cpu1 = ownCpuNs();
    await settled(full); // the drops of the run are counted
    if (run < 0) continue;
    k.wall.push(wall);
    if (cpu0 !== undefined && cpu1 !== undefined) k.cpu.push((cpu1 - cpu0) / calls);
    if (i === 1) {
      dropped += full.stats().dropped.ringFull - before;
      made += calls;
    }
  }
}
const figures = (k: (typeof cases)[number]): OverloadFigures => (k.cpu.length > 0 ? { wall: summary(k.wall), cpu: summary(k.cpu) } : { wall: summary(k.wall) });
const result: OverloadResult = { earlyExit: figures(cases[0]!), overload: figures(cases[1]!), droppedShare: dropped / made };
console.log(JSON.stringify(result));
await sink.close();
await full.close();
await idle.close();
