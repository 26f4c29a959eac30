// A worker thread of the relay: runs a Reader for the exporters the main thread hands it.
import { parentPort, workerData } from 'node:worker_threads';
import { Reader, type ReaderSettings } from './reader.js';
import type { ToReader } from './reader-pool.js';

const { settings, slot } = workerData as { settings: ReaderSettings; slot: number };
const port = parentPort!;
const reader = new Reader(settings, slot, (line) => port.postMessage({ op: 'log', line }));
port.on('message', (m: ToReader) => {
  switch (m.op) {
    case 'add':
      reader.add(m.address);
      break;
    case 'remove':
      void reader.remove(m.address);
      break;
    case 'snapshot':
      port.postMessage({ op: 'snapshot', id: m.id, snapshot: reader.snapshot() });
      break;
    case 'stop':
      void reader.close().then(() => port.postMessage({ op: 'stopped' }));
      break;
  }
});
