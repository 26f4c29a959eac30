// Entry of the transport worker. It imports nothing from the app side but shared/ and gen/.
import { BroadcastChannel, parentPort, workerData } from 'node:worker_threads';
import { CTL_CLIENTS, CTL_WORKER_TID } from '../shared/layout.js';
import { StatsBlock } from '../shared/stats-block.js';
import { threadId } from '../shared/thread-id.js';
import type { ChannelMessage, FromWorker, ToWorker, WorkerInit } from '../shared/messages.js';
import { WallClock } from './clock.js';
import { KeyTable } from './keys.js';
import { MetadataStore } from './metadata.js';
import { Pipeline } from './pipeline.js';
import type { Chunk } from './chunk.js';
import { ReplayTable } from './replay.js';
import { RingReader } from './ring-reader.js';
import { Counters } from './stats.js';
import { LossReport } from './transport/loss-report.js';
import { Transport } from './transport/server.js';

const init = workerData as WorkerInit;
const port = parentPort!;
const ctl = new Int32Array(init.ctl);
const ring = new RingReader(init.ring, init.port, init.sentBase);
const clock = new WallClock();
const counters = new Counters(new StatsBlock(init.ctl));
Atomics.store(ctl, CTL_WORKER_TID, threadId());

let closing = false;
function send(msg: FromWorker): void {
  port.postMessage(msg);
}
const warn = (message: string, code: string): void => send({ t: 'warning', message, code });
const metadata = new MetadataStore(init.maxKeys, warn);
const replay =
  init.replay === undefined
    ? undefined
    : new ReplayTable(init.replay.table, init.replay.slots, init.protocol, (canonical, slot) => send({ t: 'slot', canonical, slot }), warn);
const transport: Transport = new Transport({
  bufferSize: init.bufferSize,
  maxClients: init.maxClients,
  counters,
  metadata,
  report: init.selfMetrics ? new LossReport(init.protocol) : null,
  now: () => clock.now(),
  // Called when a client is accepted, after the metadata (the pipeline exists by then).
  state: (): Chunk | null => pipeline.replayFrames(),
  onClients: (n) => {
    if (!closing) Atomics.store(ctl, CTL_CLIENTS, n);
  },
  warn,
});
const pipeline: Pipeline = new Pipeline({
  protocol: init.protocol,
  ctl,
  main: ring,
  keys: new KeyTable(),
  metadata,
  transport,
  counters,
  clock,
  flushIntervalMs: init.flushIntervalMs,
  replay,
  warn,
});
pipeline.apply(ring, init.restore);
// Rings of other threads are announced here (see app/attach.ts).
const channel = new BroadcastChannel(init.channel);
channel.onmessage = (e) => pipeline.onChannel((e as MessageEvent).data as ChannelMessage);

try {
  const address = await transport.listen(init.listen);
  pipeline.warmUp();
  pipeline.start();
  // Threads attached before a restart announce their rings and keys again.
  channel.postMessage({ t: 'hello' } satisfies ChannelMessage);
  send({ t: 'ready', address });
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  send({ t: 'listen-error', message: e.message, code: e.code, errno: e.errno, syscall: e.syscall });
  channel.close();
  process.exit(0);
}

port.on('message', (msg: ToWorker) => {
  if (msg?.t !== 'close' || closing) return; // not ours, or already closing
  closing = true;
  void (async () => {
    // Producers stop recording; what they published is drained and flushed.
    Atomics.store(ctl, CTL_CLIENTS, 0);
    pipeline.stop();
    await transport.shutdown(msg.timeoutMs);
    counters.clients = 0;
    counters.publish();
    ring.close();
    channel.close();
    send({ t: 'closed' });
    port.close();
  })();
});
