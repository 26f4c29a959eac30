// `npm start`: an exporter recording a small, realistic mix, and a client on the same
// machine printing what it receives. Stop it with Ctrl-C, or set DEMO_SECONDS.
import { sizeDelimitedDecodeStream } from '@bufbuild/protobuf/wire';
import { connect } from 'node:net';
import { EventSchema } from '../src/gen/event_pb.js';
import { TcpBuilder } from '../src/index.js';

const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
const address = recorder.address as { host: string; port: number };
console.log(`exporter listening on ${address.host}:${address.port}`);

// The app side: describe once, take handles once, record on every "request".
recorder.registerCounter({ name: 'requests', labels: { service: 'api' } }, 'count', 'Total requests');
recorder.registerHistogram('latency', 'seconds', 'Request latency');
recorder.registerGauge('in_flight', 'count', 'Requests being served');
const routes = ['/users', '/orders', '/health'];
const requests = routes.map((route) => recorder.counter({ name: 'requests', labels: { service: 'api', route } }));
const latency = recorder.histogram('latency');
const inFlight = recorder.gauge('in_flight');
let busy = 0;
const app = setInterval(() => {
  const i = Math.floor(Math.random() * routes.length);
  requests[i]!.increment();
  inFlight.set(++busy);
  latency.record(0.002 + Math.random() * 0.05);
  setTimeout(() => inFlight.set(--busy), 30);
}, 100);

// The client side: decode the length-delimited Events as they arrive and print them.
const socket = connect(address.port, address.host);
const client = (async () => {
  for await (const { event } of sizeDelimitedDecodeStream(EventSchema, socket)) {
    if (event.case === 'metadata') {
      const m = event.value;
      console.log(`metadata  ${m.name}  unit=${m.unit.value ?? '-'}  ${m.description.value ?? ''}`);
    } else if (event.case === 'metric') {
      const m = event.value;
      const labels = Object.entries(m.labels).map(([k, v]) => `${k}=${v}`).join(',');
      const v = m.value;
      const value =
        v.case === 'counter' ? `+${v.value.value}` : v.case === 'gauge' ? `${v.value.value.case} ${v.value.value.value}` : `${v.value?.value}`;
      console.log(`metric    ${m.name}{${labels}}  ${v.case} ${value}`);
    }
  }
})();

const stop = async () => {
  clearInterval(app);
  await recorder.close(); // flushes, then ends the client's stream
  await client;
  console.log('stats', recorder.stats());
};
process.once('SIGINT', () => void stop());
if (process.env.DEMO_SECONDS) setTimeout(() => void stop(), Number(process.env.DEMO_SECONDS) * 1000);
