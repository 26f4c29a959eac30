// The platform's floor for the cpu section: a worker thread that does nothing but what any
// batching exporter must do once per flush interval: wake on a timer and write one batch to a
// loopback socket. Its CPU per wake-up is what this machine charges before any of our code runs.
// Started by bench/cpu-app.ts (mode `floor`, or `timer`: bytes 0, a thread that only wakes) with
// workerData { flushMs, bytes }.
import { createServer } from 'node:net';
import { parentPort, workerData } from 'node:worker_threads';
import { threadId } from '../src/shared/thread-id.js';

const { flushMs, bytes } = workerData as { flushMs: number; bytes: number };
const batch = Buffer.alloc(bytes, 1);
const server = createServer((socket) => {
  socket.on('error', () => {});
  const timer = setInterval(bytes > 0 ? () => socket.write(batch) : () => {}, flushMs);
  socket.once('close', () => clearInterval(timer));
});
server.listen(0, '127.0.0.1', () => {
  parentPort!.postMessage({ port: (server.address() as { port: number }).port, tid: threadId() });
});
parentPort!.once('message', () => server.close());
server.unref();
