// Entry of the transport worker. It imports nothing from the app side but shared/ and gen/.
import { getPriority, setPriority } from 'node:os';
import { BroadcastChannel, parentPort, workerData } from 'node:worker_threads';
import { Ctl } from '../shared/layout.js';
import { StatsBlock } from '../shared/stats-block.js';
import { threadId } from '../shared/thread-id.js';
import type { ChannelMessage, FromWorker, RingRecord, ToWorker, WorkerInit } from '../shared/messages.js';
import { WallClock } from './clock.js';
import { KeyTable } from './keys.js';
import { MetadataStore } from './metadata.js';
import { Pipeline } from './pipeline.js';
import type { Chunk } from './chunk.js';
import { ReplayTable } from './replay.js';
import { MAIN_RING, RingReader } from './ring-reader.js';
import { Counters } from './stats.js';
import { CaptureServer } from './capture.js';
import { FillReport } from './transport/fill-report.js';
import { LossReport } from './transport/loss-report.js';
import { Transport } from './transport/server.js';
import type { ScrapeEndpoint } from './scrape/endpoint.js';
import type { Format } from '../client/exposition-format.js';
import { HistogramTable } from './scrape/histograms.js';
import { defaultBuckets } from '../client/prometheus.js';
import type { BoundAddress } from '../shared/address.js';

/** How long a scrape may spend taking what the rings hold before it renders. */
const SCRAPE_FOLD_MS = 100;

const init = workerData as WorkerInit;
const port = parentPort!;
const ctl = new Int32Array(init.ctl);
const ring = new RingReader(init.ring, init.port, init.sentBase, MAIN_RING);
const clock = new WallClock();
const counters = new Counters(new StatsBlock(init.ctl));
const tid = threadId();
Atomics.store(ctl, Ctl.WorkerTid, tid);

let closing = false;
function send(msg: FromWorker): void {
  port.postMessage(msg);
}
const warn = (message: string, code: string): void => send({ t: 'warning', message, code });
// `workerNice`: on Linux a thread has a nice value of its own, set through its thread id (elsewhere
// the id would name the whole process, so nothing is done there: tid is 0 off Linux).
if (init.nice > 0 && tid > 0) {
  try {
    setPriority(tid, Math.min(19, getPriority(tid) + init.nice));
  } catch (err) {
    warn(`metrics-exporter-tcp: cannot lower the worker thread's priority: ${(err as Error).message}`, 'MTCP_WORKER_NICE');
  }
}
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
  fill: init.selfMetrics ? new FillReport(init.protocol, init.bufferSize) : null,
  now: () => clock.now(),
  // Called when a client is accepted, after the metadata (the pipeline exists by then).
  state: (): Chunk | null => pipeline.replayFrames(),
  tls: init.tls,
  onClients: (n) => {
    if (!closing) Atomics.store(ctl, Ctl.Clients, n);
  },
  warn,
});
// With the Prometheus endpoint (or for a capture): every histogram's observations, bucketed as registered or by unit.
const histograms =
  init.prometheus === undefined && init.capture === undefined
    ? undefined
    : new HistogramTable(init.maxKeys, (name) => metadata.info(name)?.buckets ?? defaultBuckets(metadata.info(name)?.unit), warn);
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
  replayOnConnect: init.replayOnConnect,
  histograms,
  warn,
  journal: init.journal,
  released: (r) => send({ t: 'released', ring: r }),
  exiting: () => void shutdown(init.closeTimeoutMs),
  capture:
    init.capture === undefined
      ? undefined
      : new CaptureServer({
          ctl,
          port: init.capture,
          replay: replay!,
          histograms: histograms!,
          info: (name) => metadata.info(name),
          ringFull: () => counters.ringFull,
          takeAll: (deadline, unpublished) => pipeline.takeAll(deadline, unpublished),
          stopWaiting: () => pipeline.stopWaitingForAttaches(),
          reset: () => pipeline.resetTotals(),
        }),
});
pipeline.apply(ring, init.restore);

// The parent's messages: listened to from the start, so that a close() asked while this worker
// starts (after a restart) is not lost; it is carried out once the worker is ready.
let started = false;
let closeAsked: number | undefined;
let gotRings: (rings: RingRecord[]) => void;
const known = new Promise<RingRecord[]>((resolve) => (gotRings = resolve));
port.on('message', (msg: ToWorker) => {
  if (msg?.t === 'rings') gotRings(msg.rings);
  else if (msg?.t === 'close') {
    if (started) close(msg.timeoutMs);
    else closeAsked ??= msg.timeoutMs;
  }
});

// Rings of other threads are announced on a channel (see app/attach.ts), which the host hears
// too: once this worker listens, the host hands it every ring it knows and what was announced on
// each, and the channel brings the rest (a message that comes both ways is taken once).
const channel = new BroadcastChannel(init.channel);
const early: ChannelMessage[] = [];
channel.onmessage = (e) => early.push((e as MessageEvent).data as ChannelMessage);
send({ t: 'rings' });
pipeline.adopt(await known);
channel.onmessage = (e) => pipeline.onChannel((e as MessageEvent).data as ChannelMessage);
for (const m of early) pipeline.onChannel(m);
pipeline.recover(Date.now() + init.closeTimeoutMs);

let endpoint: ScrapeEndpoint | undefined;
try {
  // A capture's worker serves no client: no listener, and no encoder to warm up.
  const address = init.listen === undefined ? undefined : await transport.listen(init.listen);
  let prometheus: BoundAddress | undefined;
  if (init.prometheus !== undefined) ({ endpoint, address: prometheus } = await serveScrapes(init.prometheus.host, init.prometheus.port));
  if (address !== undefined) pipeline.warmUp();
  pipeline.start();
  send({ t: 'ready', address, prometheus });
  started = true;
  if (closeAsked !== undefined) close(closeAsked);
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  send({ t: 'listen-error', message: e.message, code: e.code, errno: e.errno, syscall: e.syscall });
  channel.close();
  process.exit(0);
}

/**
 * Delivers what was recorded and closes every connection: for close(), and when the app's
 * process exits without it. New clients are refused; threads are told no client is connected
 * (they stop recording); what they wrote before is drained, also what they publish late (their
 * last partial block, at the end of their job); clients get until `timeoutMs` to take it; what
 * they could not is counted. Then the app's thread, if it waits at exit, is told.
 */
async function shutdown(timeoutMs: number): Promise<void> {
  if (closing) return;
  closing = true;
  const deadline = Date.now() + timeoutMs;
  transport.stopAccepting();
  Atomics.store(ctl, Ctl.Clients, 0);
  counters.clientsAtClose = transport.clientCount;
  counters.publish();
  await endpoint?.close();
  await pipeline.settle(deadline);
  pipeline.stop(deadline);
  await transport.shutdown(deadline, () => {
    counters.clients = 0;
    counters.publish();
    Atomics.store(ctl, Ctl.Flushed, 1);
    Atomics.notify(ctl, Ctl.Flushed);
  });
}

/**
 * Serves the Prometheus endpoint. Its modules (node:http, the exposition formats) are loaded
 * here, by the exporters that serve it: the others' workers are 2 MB lighter.
 */
async function serveScrapes(host: string, portNumber: number): Promise<{ endpoint: ScrapeEndpoint; address: BoundAddress }> {
  const [{ ScrapeEndpoint }, { families, renderProtobuf, renderText }, { selfInfo, selfSeries }] = await Promise.all([
    import('./scrape/endpoint.js'),
    import('./scrape/exposition.js'),
    import('./scrape/self-metrics.js'),
  ]);
  // A scrape: everything published so far, folded; then the families (the exporter's own
  // figures first), rendered as they are pulled.
  const scrape = (format: Format): Iterator<Buffer> => {
    pipeline.foldForScrape(Date.now() + SCRAPE_FOLD_MS);
    const app = families(replay!.values(), histograms!.values(), (name) => metadata.info(name));
    const self = families(selfSeries(counters, init.restarts, app.hidden), [], selfInfo);
    const all = [...self.families, ...app.families];
    return format === 'protobuf' ? renderProtobuf(all) : renderText(all, format);
  };
  return ScrapeEndpoint.listen(host, portNumber, scrape);
}

/** close(): the shutdown, then this worker ends. */
function close(timeoutMs: number): void {
  void shutdown(timeoutMs).then(() => {
    ring.close();
    channel.close();
    send({ t: 'closed' });
    init.capture?.close();
    // Nothing is left to keep this thread alive but the port to the app: closing it ends the
    // thread. Deno's parentPort has no close(); unref() lets the thread end there (and in Node).
    if (typeof port.close === 'function') port.close();
    else port.unref();
  });
}
