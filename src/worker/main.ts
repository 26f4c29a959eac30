// Entry of the transport worker. It imports nothing from the app side but shared/ and gen/.
import { parentPort, workerData } from 'node:worker_threads';
import { CTL_CLIENTS, CTL_STATS_OFFSET, STAT_COUNT } from '../shared/layout.js';
import type { FromWorker, ToWorker, WorkerInit } from '../shared/messages.js';
import { KeyTable } from './keys.js';
import { MetadataStore } from './metadata.js';
import { Pipeline } from './pipeline.js';
import { RingReader } from './ring-reader.js';
import { Counters } from './stats.js';
import { Transport } from './transport/server.js';

const init = workerData as WorkerInit;
const port = parentPort!;
const ctl = new Int32Array(init.ctl);
const metadata = new MetadataStore();
const ring = new RingReader(init.ring, init.port);

const counters = new Counters(new BigInt64Array(init.ctl, CTL_STATS_OFFSET, STAT_COUNT));

let closing = false;
const transport = new Transport({
  bufferSize: init.bufferSize,
  maxClients: init.maxClients,
  counters,
  metadata,
  onClients: (n) => {
    if (!closing) Atomics.store(ctl, CTL_CLIENTS, n);
  },
});
const pipeline = new Pipeline({ ctl, rings: [ring], keys: new KeyTable(), metadata, transport, counters });
pipeline.apply(ring, init.replay);

function send(msg: FromWorker): void {
  port.postMessage(msg);
}

try {
  const address = await transport.listen(init.listen);
  pipeline.warmUp();
  pipeline.start();
  send({ t: 'ready', address });
} catch (err) {
  const e = err as NodeJS.ErrnoException;
  send({ t: 'listen-error', message: e.message, code: e.code, errno: e.errno, syscall: e.syscall });
  process.exit(0);
}

port.on('message', (msg: ToWorker) => {
  if (msg?.t !== 'close' || closing) return; // not ours, or already closing
  closing = true;
  void (async () => {
    // Producers stop recording; what they published is drained and flushed.
    Atomics.store(ctl, CTL_CLIENTS, 0);
    await pipeline.stop();
    await transport.shutdown(msg.timeoutMs);
    counters.clients = 0;
    counters.publish();
    ring.close();
    send({ t: 'closed' });
    port.close();
  })();
});
