// A worker thread of the relay: runs a Reader for the exporters the main thread hands it.
import { parentPort, workerData } from 'node:worker_threads';
import { Reader, type ReaderSettings } from './reader.js';
import type { FromReader, ToReader } from './reader-pool.js';

const { settings, slot } = workerData as { settings: ReaderSettings; slot: number };
const port = parentPort!;
const say = (m: FromReader, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);
const reader = new Reader(settings, slot, (line) => say({ op: 'log', line }));
port.on('message', (m: ToReader) => {
  switch (m.op) {
    case 'add':
      reader.add(m.address, m.owners);
      break;
    case 'remove':
      void reader.remove(m.address);
      break;
    case 'changes': {
      const { changes, transfer } = reader.changes();
      say({ op: 'changes', id: m.id, changes }, transfer);
      break;
    }
    case 'stop':
      void reader.close().then(() => say({ op: 'stopped' }));
      break;
  }
});
