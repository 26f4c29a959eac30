// A piscina pool whose tasks record metrics into the main thread's exporter.
// Run: npm run build && node dist/examples/piscina-pool.js
import { Piscina } from 'piscina';
import { TcpBuilder } from '../src/index.js';
import { withMetrics } from '../src/piscina.js';

const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
console.log('exporter on', recorder.address, '- connect a client to watch (e.g. npx metrics-exporter-tcp-observer)');

// withMetrics() adds the recorder's connector to workerData; nothing else changes.
const pool = new Piscina(withMetrics(recorder, { filename: new URL('./pool-task.js', import.meta.url).href, maxThreads: 4 }));
const results = await Promise.all(Array.from({ length: 100 }, (_, i) => pool.run({ size: 1000 + i })));
console.log('tasks done:', results.length, 'stats:', recorder.stats());
await pool.destroy();
await recorder.close();
