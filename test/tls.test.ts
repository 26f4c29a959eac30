// The stream over TLS, with and without client certificates (issue "Security on every hop"):
// only clients that complete the handshake are served; any other connection gets no metric
// bytes, holds no client slot, is closed within the handshake timeout and is counted.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { TcpClient, type ClientError, type ClientTlsOptions } from '../src/client/index.js';
import { TcpBuilder, type TcpRecorder } from '../src/index.js';
import { haveOpenssl, makeCerts, NO_OPENSSL, type Certs } from 'metrics-exporter-tcp-test-support/certs';
import { FILL_METRICS, ROOT, TestClient, closePastDeadline, tally, waitFor } from './helpers.js';

const skip = haveOpenssl() ? false : NO_OPENSSL;
let certs: Certs;
before(() => {
  if (!skip) certs = makeCerts();
});
after(() => certs?.remove());

type Tcp = { host: string; port: number };

function mtls(b: TcpBuilder = new TcpBuilder(), handshakeTimeoutMs = 5000): TcpBuilder {
  return b.listenAddress('127.0.0.1:0').tls({ key: certs.server.key, cert: certs.server.cert, ca: certs.ca.cert, handshakeTimeoutMs });
}

/** A client of the test authority (or another one's, or none), that checks the exporter's certificate. */
function client(recorder: TcpRecorder, who: 'ours' | 'other' | 'none' = 'ours'): Promise<TestClient> {
  const pair = who === 'ours' ? certs.client : who === 'other' ? certs.otherClient : undefined;
  return TestClient.connectTls(recorder.address as Tcp, { ca: certs.ca.cert, servername: 'localhost', ...(pair ?? {}) });
}

/** Resolves once the exporter has closed `c`'s connection. */
function closedByExporter(c: TestClient): Promise<void> {
  return waitFor('the exporter to close the connection', () => c.closed, 5000);
}

test('with client certificates: a client of the authority is served every record, exactly', { skip }, async (t) => {
  const recorder = await mtls(new TcpBuilder().bufferSize(1 << 17)).build();
  t.after(() => recorder.close());
  const c = await client(recorder);
  t.after(() => c.close());
  await waitFor('the client served', () => recorder.stats().clients === 1);
  recorder.registerCounter('secret_requests', 'count', 'over TLS');
  const h = recorder.counter({ name: 'secret_requests', labels: { route: '/a' } });
  for (let i = 0; i < 100_000; i++) h.increment();
  await waitFor('every record', () => tally(c.events()).metrics === 100_000, 10_000, () => recorder.stats());
  const [meta, first] = c.events();
  assert.equal(meta?.event.case, 'metadata');
  assert.deepEqual(first?.event.case === 'metric' && [first.event.value.name, first.event.value.labels], ['secret_requests', { route: '/a' }]);
  const s = recorder.stats();
  assert.deepEqual(s.dropped, { ringFull: 0, clientQueue: 0, invalid: 0, metadata: 0 });
  assert.equal(s.rejectedClients, 0);
});

test('plain TCP, no certificate, another authority\'s: no metric bytes, no client slot, closed and counted', { skip }, async (t) => {
  // One slot only: a connection that holds it would lock the real client out. A short handshake
  // timeout, for the idle plaintext connection.
  const recorder = await mtls(new TcpBuilder().maxClients(1), 1000).build();
  t.after(() => recorder.close());
  const plain = await TestClient.connect(recorder.address); // sends nothing, as a plaintext reader of ours would
  t.after(() => plain.close());
  const talker = await TestClient.connect(recorder.address); // sends plaintext
  t.after(() => talker.close());
  talker.socket.write('GET /metrics HTTP/1.1\r\n\r\n');
  // With TLS 1.3 the client may finish its side of the handshake before the exporter has
  // refused its certificate: then it is closed right after, having received nothing.
  for (const who of ['none', 'other'] as const) {
    const c = await client(recorder, who).catch(() => undefined);
    if (c === undefined) continue;
    t.after(() => c.close());
    await closedByExporter(c);
    assert.equal(c.bytes, 0, `the client with ${who === 'none' ? 'no certificate' : "another authority's"} got nothing`);
  }
  const good = await client(recorder);
  t.after(() => good.close());
  await waitFor('the real client served while the others are pending or gone', () => recorder.stats().clients === 1);
  recorder.counter('secret_requests').increment(7);
  await waitFor('the real client gets it', () => tally(good.events()).metrics === 1);
  await closedByExporter(plain);
  await closedByExporter(talker);
  await waitFor('four rejected', () => recorder.stats().rejectedClients === 4, 5000, () => recorder.stats());
  assert.equal(plain.bytes, 0, 'the silent plaintext connection got nothing');
  for (const c of [plain, talker]) assert.ok(!c.buffer().includes('secret_requests'), 'no metric bytes');
  assert.equal(recorder.stats().clients, 1);
});

test('without client certificates: any TLS client is served (the exporter is authenticated), plain TCP is not', { skip }, async (t) => {
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').tls({ key: certs.server.key, cert: certs.server.cert, handshakeTimeoutMs: 1000 }).build();
  t.after(() => recorder.close());
  const c = await client(recorder, 'none');
  t.after(() => c.close());
  const plain = await TestClient.connect(recorder.address);
  t.after(() => plain.close());
  await waitFor('the TLS client served', () => recorder.stats().clients === 1);
  recorder.counter('x').increment();
  await waitFor('it gets the record', () => tally(c.events()).metrics === 1);
  await closedByExporter(plain);
  assert.equal(plain.bytes, 0);
  // The worker publishes its figures after the close it made: they may trail it by a moment.
  await waitFor('the rejection counted', () => recorder.stats().rejectedClients === 1);
});

test('close() past its deadline over TLS: a frame is delivered whole or counted as dropped, once', { skip }, async (t) => {
  const recorder = await mtls(new TcpBuilder().bufferSize(1 << 16).closeTimeoutMs(200)).build();
  const c = await client(recorder);
  t.after(() => c.close());
  await waitFor('the client served', () => recorder.stats().clients === 1);
  await closePastDeadline(recorder, c, (s) => t.diagnostic(s));
});

test('idle connections cannot lock clients out: past the handshakes in progress allowed, the oldest is given up', { skip }, async (t) => {
  // maxClients 1: two handshakes in progress at most. Three idle connections, then a client.
  const recorder = await mtls(new TcpBuilder().maxClients(1)).build();
  t.after(() => recorder.close());
  const idle = await Promise.all([0, 1, 2].map(() => TestClient.connect(recorder.address)));
  t.after(() => Promise.all(idle.map((c) => c.close())));
  await closedByExporter(idle[0]!); // long before its handshake timeout (5 s)
  const good = await client(recorder);
  t.after(() => good.close());
  await waitFor('the client served', () => recorder.stats().clients === 1);
  await closedByExporter(idle[1]!); // given up for the client's handshake
  assert.equal(recorder.stats().rejectedClients, 2);
  assert.equal(idle[2]!.closed, false, 'the newest idle one waits out its handshake timeout');
});

test('tls() rejects options it cannot use, naming the option', { skip }, () => {
  const { key, cert } = certs.server;
  const bad = (o: unknown, what: RegExp) => assert.throws(() => new TcpBuilder().tls(o as never), (e: Error) => e instanceof TypeError && what.test(e.message));
  bad({ key: 'not a key', cert }, /tls\.key/);
  bad({ key, cert: 'not a certificate' }, /tls\.cert/);
  bad({ key: certs.client.key, cert }, /tls\.key/); // another certificate's key
  bad({ key, cert, ca: 'nope' }, /tls\.ca\[0\]/);
  bad({ key, cert, requestCert: true }, /tls\.requestCert needs tls\.ca/);
  bad({ key, cert, handshakeTimeoutMs: 0 }, /handshakeTimeoutMs/);
  bad({ key: 42, cert }, /tls\.key must be PEM/);
  bad(undefined, /tls\(\) takes/);
});

test('TcpClient over TLS: reads an exporter that asks for its certificate; a failed handshake is a TLS error that says why', { skip }, async (t) => {
  const recorder = await mtls().build();
  t.after(() => recorder.close());
  const { host, port } = recorder.address as Tcp;
  const address = `${host}:${port}`;
  const ok = new TcpClient(address, { tls: { ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key } });
  t.after(() => ok.close());
  const events: string[] = [];
  const reading = (async () => {
    for await (const e of ok) if (e.kind === 'metric' && !FILL_METRICS.has(e.name)) events.push(e.name); // not its fill levels
  })();
  await waitFor('the TLS client served', () => recorder.stats().clients === 1);
  recorder.counter('over_tls').increment();
  await waitFor('its record', () => events.length === 1);
  assert.deepEqual(events, ['over_tls']);

  const failure = async (tls: ClientTlsOptions): Promise<ClientError> => {
    const c = new TcpClient(address, { tls });
    try {
      for await (const _ of c) assert.fail('no event expected');
    } catch (err) {
      return err as ClientError;
    } finally {
      await c.close();
    }
    return assert.fail('the client ended without an error');
  };
  const untrusted = await failure({ ca: certs.otherCa.cert, cert: certs.client.cert, key: certs.client.key });
  assert.equal(untrusted.code, 'TLS');
  assert.match(untrusted.message, /TLS handshake with 127\.0\.0\.1:\d+ failed: .*(certificate|verify)/i);
  const anonymous = await failure({ ca: certs.ca.cert });
  assert.equal(anonymous.code, 'TLS');
  assert.match(anonymous.message, /requires a client certificate: give tls\.cert and tls\.key/);
  const stranger = await failure({ ca: certs.ca.cert, cert: certs.otherClient.cert, key: certs.otherClient.key });
  assert.equal(stranger.code, 'TLS');
  assert.match(stranger.message, /refused this client's certificate/);
  const misnamed = await failure({ ca: certs.ca.cert, cert: certs.client.cert, key: certs.client.key, servername: 'elsewhere.example' });
  assert.equal(misnamed.code, 'TLS');
  assert.match(misnamed.message, /elsewhere\.example/);
  await ok.close();
  await reading;

  assert.throws(() => new TcpClient(address, { tls: { cert: certs.client.cert } }), /tls\.cert and tls\.key go together/);
  assert.throws(() => new TcpClient(address, { tls: { ca: 'nope' } }), /tls\.ca\[0\] is not usable/);
});

test('the observer over TLS: --tls-ca/--tls-cert/--tls-key; a bad file or a refused handshake is a clear error and a failing exit', { skip }, async (t) => {
  const recorder = await mtls().build();
  t.after(() => recorder.close());
  recorder.registerCounter('over_tls', 'count', 'read by the observer');
  const { host, port } = recorder.address as Tcp;
  const file = (name: string) => join(certs.dir, name);
  const observe = (...args: string[]) => runObserver([`${host}:${port}`, '--json', '--once', '--duration', '300', ...args]);
  const ok = await observe('--tls-ca', file('ca.crt'), '--tls-cert', file('client.crt'), '--tls-key', file('client.key'));
  assert.equal(ok.code, 0, ok.stderr);
  assert.deepEqual((JSON.parse(ok.stdout) as { connection: { state: string } }).connection.state, 'connected');
  const untrusted = await observe('--tls-ca', file('other-ca.crt'), '--tls-cert', file('client.crt'), '--tls-key', file('client.key'));
  assert.equal(untrusted.code, 1);
  assert.match(untrusted.stderr, /TLS handshake with .* failed: .*not signed by an authority in tls\.ca/);
  const missing = await observe('--tls-ca', file('nope.crt'));
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /--tls-ca \S*nope\.crt: cannot read it/);
  const notAKey = await observe('--tls-ca', file('ca.crt'), '--tls-cert', file('client.crt'), '--tls-key', file('client.crt'));
  assert.equal(notAKey.code, 2);
  assert.match(notAKey.stderr, /--tls-key \S*client\.crt is not usable/);
});

/** Runs the observer's command, from the workspace package, as a user would. */
function runObserver(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'packages/observer/dist/src/cli.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}
