// The relay reads exporters over TLS (--tls-ca, --tls-cert, --tls-key): with client
// certificates, a failed handshake with one exporter is logged once with why, shows as up 0, is
// tried again with back-off and costs the other exporters nothing; a wrong file is an error at
// start-up naming it. OTLP goes to an https collector with headers and a client certificate.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { TcpBuilder } from 'metrics-exporter-tcp';
import { haveOpenssl, makeCerts, NO_OPENSSL, type Certs } from 'metrics-exporter-tcp-test-support/certs';
import { startRelay } from '../src/run.js';
import { logSink, otlpReceiver, relayOptions, sample, scrape } from './harness.js';
import { waitUntil } from './wait.js';

const skip = haveOpenssl() ? false : NO_OPENSSL;
let certs: Certs;
before(() => {
  if (!skip) certs = makeCerts();
});
after(() => certs?.remove());

const file = (name: string) => join(certs.dir, name);
/** The relay's TLS files: our authority, and (unless `anonymous`) the client certificate it signed. */
const relayTls = (anonymous = false) => ({ ca: file('ca.crt'), ...(anonymous ? {} : { cert: file('client.crt'), key: file('client.key') }) });

/** An exporter serving TLS with our server certificate, requiring client certificates signed by `clientCa`. */
async function mtlsExporter(t: { after(fn: () => unknown): void }, clientCa = certs.ca.cert) {
  const e = await new TcpBuilder().listenAddress('127.0.0.1:0').tls({ key: certs.server.key, cert: certs.server.cert, ca: clientCa, handshakeTimeoutMs: 2000 }).build();
  t.after(() => e.close());
  const a = e.address as { host: string; port: number };
  return { e, address: `${a.host}:${a.port}` };
}

test('over mutual TLS: an exporter that refuses the relay is up 0, logged once with why and tried again; the other is relayed exactly', { skip }, async (t) => {
  const good = await mtlsExporter(t);
  const refusing = await mtlsExporter(t, certs.otherCa.cert); // wants another authority's clients
  const sink = logSink();
  const relay = await startRelay(relayOptions([good.address, refusing.address], { prometheus: '127.0.0.1:0', threads: 1, log: sink.log, tls: relayTls() }));
  t.after(() => relay.close());
  await waitUntil('the good exporter served', async () => good.e.stats().clients === 1);
  good.e.counter('secret_requests').increment(41);
  good.e.counter('secret_requests').increment(1);
  await waitUntil('the total relayed', async () => sample(await scrape(relay), `secret_requests_total{exporter="${good.address}"}`) === 42, 10_000);
  // Tried again with back-off (100 ms, doubling): three refusals come within a few seconds.
  await waitUntil('three attempts refused', async () => refusing.e.stats().rejectedClients >= 3, 10_000);
  const text = await scrape(relay);
  assert.equal(sample(text, `metrics_exporter_tcp_relay_up{exporter="${good.address}"}`), 1);
  assert.equal(sample(text, `metrics_exporter_tcp_relay_up{exporter="${refusing.address}"}`), 0);
  assert.equal(sample(text, `metrics_exporter_tcp_relay_connections_total{exporter="${refusing.address}"}`), 0, 'a refused handshake is not a connection');
  assert.equal(refusing.e.stats().clients, 0);
  const failures = sink.text.split('\n').filter((l) => l.includes(`TLS handshake with ${refusing.address} failed`));
  assert.equal(failures.length, 1, `said once, not at every attempt:\n${sink.text}`);
  assert.match(failures[0]!, /refused the relay's certificate/);
  assert.doesNotMatch(sink.text, new RegExp(`TLS handshake with ${good.address}`));
});

test('over TLS: no client certificate for an exporter that requires one, and TLS to a plaintext exporter, each say why', { skip }, async (t) => {
  const mtls = await mtlsExporter(t);
  const plain = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  t.after(() => plain.close());
  const plainAddress = `127.0.0.1:${(plain.address as { port: number }).port}`;
  const sink = logSink();
  const relay = await startRelay(relayOptions([mtls.address, plainAddress], { prometheus: '127.0.0.1:0', threads: 1, log: sink.log, tls: { ...relayTls(true), handshakeTimeoutMs: 300 } }));
  t.after(() => relay.close());
  await waitUntil('both failures logged', async () => sink.text.split('TLS handshake with').length - 1 === 2, 10_000);
  assert.match(sink.text, new RegExp(`TLS handshake with ${mtls.address} failed: .*(client certificate|refused the relay's certificate)`));
  assert.match(sink.text, new RegExp(`TLS handshake with ${plainAddress} failed: .*(does not speak TLS|no handshake in 300 ms)`));
  const text = await scrape(relay);
  assert.equal(sample(text, `metrics_exporter_tcp_relay_up{exporter="${mtls.address}"}`), 0);
  assert.equal(sample(text, `metrics_exporter_tcp_relay_up{exporter="${plainAddress}"}`), 0);
});

test('a TLS file that cannot be read, is not PEM, or a key that is not the certificate\'s: an error at start-up naming the file', { skip }, async () => {
  writeFileSync(file('garbage.pem'), 'not a certificate\n');
  const cases: [Parameters<typeof startRelay>[0]['tls'], RegExp][] = [
    [{ ca: file('missing.crt') }, /--tls-ca .*missing\.crt: cannot read it: ENOENT/],
    [{ ca: file('garbage.pem') }, /--tls-ca .*garbage\.pem: not a PEM certificate/],
    [{ cert: file('client.crt'), key: file('garbage.pem') }, /--tls-key .*garbage\.pem: not a PEM private key/],
    [{ cert: file('client.crt'), key: file('server.key') }, /--tls-key .*server\.key is not the key of --tls-cert .*client\.crt \(they do not match\)/],
    [{ cert: file('client.crt') }, /--tls-cert .*client\.crt needs its private key too/],
  ];
  for (const [tls, message] of cases) {
    await assert.rejects(startRelay(relayOptions(['127.0.0.1:5000'], { prometheus: '127.0.0.1:0', tls })), message);
  }
  // The command says it and exits 1, at once.
  const cli = new URL('../src/cli.js', import.meta.url).pathname;
  const r = spawnSync(process.execPath, [cli, '--connect', '127.0.0.1:5000', '--prometheus', '127.0.0.1:0', '--tls-ca', file('garbage.pem')], { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /--tls-ca .*garbage\.pem: not a PEM certificate/);
});

test('OTLP to an https collector that requires a client certificate, with --otlp-header: every export carries the header', { skip }, async (t) => {
  const receiver = await otlpReceiver({ key: certs.server.key, cert: certs.server.cert, ca: certs.ca.cert, requestCert: true, rejectUnauthorized: true });
  const exporter = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  t.after(() => exporter.close());
  const address = `127.0.0.1:${(exporter.address as { port: number }).port}`;
  const sink = logSink();
  const relay = await startRelay(
    relayOptions([address], {
      otlp: receiver.url,
      // The export's timeout is its interval: a TLS handshake on a loaded machine can take 100 ms.
      otlpIntervalMs: 500,
      otlpHeaders: { Authorization: 'Bearer t0ken', 'X-Scope-OrgID': 'tenant-1' },
      otlpTls: { ca: file('ca.crt'), cert: file('client.crt'), key: file('client.key') },
      log: sink.log,
    }),
  );
  t.after(async () => {
    await relay.close();
    await receiver.close();
  });
  await waitUntil('connected', async () => exporter.stats().clients === 1);
  exporter.counter('secret_requests').increment(7);
  await waitUntil('the total exported', async () => receiver.latest('secret_requests').some((p) => p.asDouble === 7), 10_000);
  assert.ok(receiver.headers.every((h) => h.authorization === 'Bearer t0ken' && h['x-scope-orgid'] === 'tenant-1'));
  assert.doesNotMatch(sink.text, /otlp:/, 'no export failed');
});

test('OTLP: TLS files with an http:// collector, a bad header, or a wrong file are errors at start-up', { skip }, async () => {
  const cases: [Partial<Parameters<typeof startRelay>[0]>, RegExp][] = [
    [{ otlp: 'http://127.0.0.1:4318/v1/metrics', otlpTls: { ca: file('ca.crt') } }, /--otlp-tls-\* need an https:\/\/ collector URL/],
    [{ otlp: 'https://127.0.0.1:4318/v1/metrics', otlpTls: { ca: file('garbage.pem') } }, /--otlp-tls-ca .*garbage\.pem: not a PEM certificate/],
    [{ otlp: 'https://127.0.0.1:4318/v1/metrics', otlpHeaders: { 'Bad Name': 'x' } }, /--otlp-header Bad Name: not an HTTP header name/],
    [{ otlp: 'https://127.0.0.1:4318/v1/metrics', otlpHeaders: { Authorization: 'a\r\nX-Injected: 1' } }, /line break/],
  ];
  writeFileSync(file('garbage.pem'), 'not a certificate\n');
  for (const [extra, message] of cases) await assert.rejects(startRelay(relayOptions(['127.0.0.1:5000'], extra)), message);
});
