// The relay's /metrics as Prometheus exporters serve it (--web-config-file, exporter-toolkit's
// format): a real Prometheus scrapes it over https with basic auth and a client certificate;
// requests without them, with a wrong password, in plain HTTP or without a certificate are
// refused; a flood of wrong passwords waits in a bounded queue and delays no scrape.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { request } from 'node:https';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import bcrypt from 'bcryptjs';
import { TcpBuilder } from 'metrics-exporter-tcp';
import { haveOpenssl, makeCerts, NO_OPENSSL, type Certs } from 'metrics-exporter-tcp-test-support/certs';
import { startRelay, type Relay } from '../src/run.js';
import { servePrometheus, type PrometheusEndpoint } from '../src/prometheus.js';
import { loadWebConfig } from '../src/web-config.js';
import { NO_PROMETHEUS, PROMETHEUS, logSink, prometheusScraping, relayOptions } from './harness.js';
import { waitUntil } from './wait.js';

const skip = haveOpenssl() ? false : NO_OPENSSL;
let certs: Certs;
/** Hashes made once: cost 10 (what htpasswd -nBC 10 makes, ~80 ms a check here) and 12 (~4× that). */
let prometheusHash: string;
let slowHash: string;
before(() => {
  if (skip) return;
  certs = makeCerts();
  prometheusHash = bcrypt.hashSync('s3cret', 10);
  slowHash = bcrypt.hashSync('slow-s3cret', 12);
});
after(() => certs?.remove());

/** Writes a web config into the certificates' folder (so its relative file names resolve there); returns its path. */
function webConfig(name: string, yaml: string): string {
  const path = join(certs.dir, name);
  writeFileSync(path, yaml);
  return path;
}

const MTLS_AND_BASIC_AUTH = () => `tls_server_config:
  cert_file: server.crt
  key_file: server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: ca.crt
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
basic_auth_users:
  prometheus: ${prometheusHash}
  slow: ${slowHash}
`;

type Reply = { status: number; headers: Record<string, string | string[] | undefined>; body: string };

/**
 * GET /metrics over https, trusting our authority; with our client certificate (or `as`, or none
 * when `anonymous`), with basic auth when `auth`.
 */
function get(relay: { prometheus?: PrometheusEndpoint }, o: { auth?: string; anonymous?: boolean; as?: { cert: string; key: string } } = {}): Promise<Reply> {
  const { port } = relay.prometheus!.address as { port: number };
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: '/metrics',
        ca: certs.ca.cert,
        ...(o.anonymous ? {} : (o.as ?? { cert: certs.client.cert, key: certs.client.key })),
        headers: o.auth === undefined ? {} : { authorization: `Basic ${Buffer.from(o.auth).toString('base64')}` },
        agent: false,
      },
      (res) => {
        let body = '';
        res.on('data', (d) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

async function relayWith(t: { after(fn: () => unknown): void }, webConfigFile: string): Promise<{ relay: Relay; address: string }> {
  const exporter = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  t.after(() => exporter.close());
  const address = `127.0.0.1:${(exporter.address as { port: number }).port}`;
  const relay = await startRelay(relayOptions([address], { prometheus: '127.0.0.1:0', webConfigFile }));
  t.after(() => relay.close());
  await waitUntil('connected', async () => exporter.stats().clients === 1);
  exporter.counter('secret_requests').increment(42);
  return { relay, address };
}

test('https + client certificates + basic auth: a real Prometheus scrapes it (up 1); no or wrong credentials 401, plain HTTP and no certificate refused', { skip: skip || (PROMETHEUS ? false : NO_PROMETHEUS), timeout: 60_000 }, async (t) => {
  const { relay, address } = await relayWith(t, webConfig('web.yml', MTLS_AND_BASIC_AUTH()));
  // Prometheus starts while the requests below are made.
  const dir = certs.dir;
  const starting = prometheusScraping(relay, {
    job: `    scheme: https\n    basic_auth:\n      username: prometheus\n      password: s3cret\n    tls_config:\n      ca_file: ${dir}/ca.crt\n      cert_file: ${dir}/client.crt\n      key_file: ${dir}/client.key\n`,
  });
  t.after(async () => (await starting).close());
  const ok = await get(relay, { auth: 'prometheus:s3cret' });
  assert.equal(ok.status, 200);
  assert.match(ok.body, new RegExp(`^secret_requests_total\\{exporter="${address}"\\} 42$`, 'm'));
  assert.equal(ok.headers['x-content-type-options'], 'nosniff');
  for (const auth of [undefined, 'prometheus:wrong', 'nobody:s3cret', 'prometheus']) {
    const r = await get(relay, { auth });
    assert.equal(r.status, 401, `credentials ${auth}`);
    assert.equal(r.headers['www-authenticate'], 'Basic');
    assert.doesNotMatch(r.body, /secret_requests/);
  }
  const { port } = relay.prometheus!.address as { port: number };
  await assert.rejects(fetch(`http://127.0.0.1:${port}/metrics`), 'plain HTTP to the TLS port');
  await assert.rejects(get(relay, { auth: 'prometheus:s3cret', anonymous: true }), 'no client certificate');

  const prom = await starting;
  await prom.until('up{job="relay"}', [1]);
  await prom.until('secret_requests_total', [42]);
});

test('a flood of wrong passwords waits two at a time per client (the rest 429 at once); a scraper whose password was checked is served meanwhile', { skip }, async (t) => {
  const { relay } = await relayWith(t, webConfig('web-flood.yml', MTLS_AND_BASIC_AUTH()));
  assert.equal((await get(relay, { auth: 'prometheus:s3cret' })).status, 200); // checked once, cached
  // Each wrong password for `slow` costs ~300 ms of bcrypt on the relay's bcrypt thread.
  const flood = Array.from({ length: 12 }, (_, i) => get(relay, { auth: `slow:guess-${i}` }));
  const during = await get(relay, { auth: 'prometheus:s3cret' });
  assert.equal(during.status, 200, 'the known scraper is served while the flood waits');
  const statuses = (await Promise.all(flood)).map((r) => r.status);
  assert.ok(statuses.every((s) => s === 401 || s === 429), String(statuses));
  assert.ok(statuses.filter((s) => s === 401).length <= 6, `few checked (the rest refused at once): ${statuses}`);
  assert.ok(statuses.includes(429), String(statuses));
});

test("client_auth_type as exporter-toolkit means it, and client_allowed_sans", { skip }, async () => {
  // Served (true) or refused (false): no certificate, ours (no SAN), another authority's, and the
  // server's own (SANs 127.0.0.1 and localhost; not for client use, so it never verifies).
  const policies: [string, [boolean, boolean, boolean, boolean]][] = [
    ['client_auth_type: NoClientCert', [true, true, true, true]],
    ['client_auth_type: RequestClientCert', [true, true, true, true]],
    ['client_auth_type: RequireAnyClientCert', [false, true, true, true]],
    ['client_auth_type: VerifyClientCertIfGiven\n  client_ca_file: ca.crt', [true, true, false, false]],
    ['client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt', [false, true, false, false]],
    ['client_auth_type: RequireAnyClientCert\n  client_allowed_sans: [localhost]', [false, false, false, true]],
  ];
  for (const [i, [policy, want]] of policies.entries()) {
    const config = loadWebConfig(webConfig(`web-policy-${i}.yml`, `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  ${policy}\n`));
    // The endpoint alone (no exporters): what is served does not matter here.
    const prometheus = await servePrometheus(async () => [Buffer.from('up 1\n')][Symbol.iterator](), { host: '127.0.0.1', port: 0 }, { maxRequests: 0, config });
    try {
      const served = async (o: Parameters<typeof get>[1]) => (await get({ prometheus }, o).catch(() => undefined))?.status === 200;
      const got = [await served({ anonymous: true }), await served({}), await served({ as: certs.otherClient }), await served({ as: certs.server })];
      assert.deepEqual(got, want, policy);
    } finally {
      await prometheus.close();
    }
  }
});

test('a changed web config (users, renewed certificates) is served with at once; a broken one is logged and the last good one stays', { skip }, async (t) => {
  const exporter = await new TcpBuilder().listenAddress('127.0.0.1:0').build();
  t.after(() => exporter.close());
  const renewed = makeCerts(); // another authority, and a server certificate it signed
  t.after(() => renewed.remove());
  const dir = mkdtempSync(join(tmpdir(), 'mtcp-web-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'server.crt'), certs.server.cert);
  writeFileSync(join(dir, 'server.key'), certs.server.key);
  const path = join(dir, 'web.yml');
  const tlsOnly = 'tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n';
  writeFileSync(path, tlsOnly);
  const sink = logSink();
  const relay = await startRelay(relayOptions([`127.0.0.1:${(exporter.address as { port: number }).port}`], { prometheus: '127.0.0.1:0', webConfigFile: path, webConfigCheckMs: 50, log: sink.log }));
  t.after(() => relay.close());
  assert.equal((await get(relay, { anonymous: true })).status, 200);

  writeFileSync(path, `${tlsOnly}basic_auth_users:\n  prometheus: ${prometheusHash}\n`);
  await waitUntil('basic auth asked for', async () => (await get(relay, { anonymous: true })).status === 401);
  assert.equal((await get(relay, { anonymous: true, auth: 'prometheus:s3cret' })).status, 200);

  writeFileSync(path, `${tlsOnly}basic_auth_users:\n  prometheus: not-a-hash\n`);
  await waitUntil('the broken version logged', async () => sink.text.includes('still serving with the last good version'));
  assert.match(sink.text, /basic_auth_users\.prometheus is not a bcrypt hash .*; still serving with the last good version/);
  assert.equal((await get(relay, { anonymous: true, auth: 'prometheus:s3cret' })).status, 200);

  // Renewed certificates (here, of another authority): new connections get them.
  writeFileSync(path, tlsOnly);
  writeFileSync(join(dir, 'server.key'), renewed.server.key);
  writeFileSync(join(dir, 'server.crt'), renewed.server.cert);
  const { port } = relay.prometheus!.address as { port: number };
  const trusting = (ca: string) => new Promise<number>((resolve, reject) => request({ host: '127.0.0.1', port, path: '/metrics', ca, agent: false }, (res) => (res.resume(), resolve(res.statusCode!))).on('error', reject).end());
  await waitUntil('the renewed certificate served', async () => (await trusting(renewed.ca.cert).catch(() => 0)) === 200);
  await assert.rejects(trusting(certs.ca.cert), 'the old authority no longer verifies it');
});

test('web config: exporter-toolkit\'s rules, and what this relay does not support, are errors naming the file and key', { skip }, () => {
  const bad: [string, RegExp][] = [
    ['tls_server_config:\n  cert_file: server.crt\n', /needs key_file/],
    ['tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n', /client\.key is not the key of .*server\.crt/],
    ['tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n', /client_ca_file is given but client_auth_type asks for no client certificate/],
    ['tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: Sometimes\n', /client_auth_type Sometimes is not one of/],
    ['tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n', /tls_server_config\.cert_file .*missing\.crt: cannot read it/],
    ['tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  cipher_suites: [TLS_AES_128_GCM_SHA256]\n', /tls_server_config\.cipher_suites is not supported by this relay/],
    ['basic_auth_users:\n  prometheus: plaintext\n', /basic_auth_users\.prometheus is not a bcrypt hash/],
    ['basic_auth_user:\n  prometheus: x\n', /unknown key basic_auth_user/],
    ['rate_limit:\n  interval: 1s\n  burst: 5\n', /rate_limit is not supported/],
    ['tls_server_config: [\n', /not valid YAML/],
  ];
  for (const [yaml, message] of bad) {
    const path = webConfig('web-bad.yml', yaml);
    assert.throws(() => loadWebConfig(path), (err: Error) => err instanceof TypeError && message.test(err.message) && err.message.includes(path), yaml);
  }
  const ok = loadWebConfig(webConfig('web-ok.yml', `tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireClientCert\n  min_version: TLS13\nhttp_server_config:\n  http2: true\n`));
  assert.deepEqual([ok.tls?.clientAuth, ok.tls?.minVersion, ok.users.size], ['RequireAnyClientCert', 'TLSv1.3', 0]);
});

test('a wildcard /metrics address warns that metrics become readable from the network, unless clients must authenticate', { skip }, async (t) => {
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(w.message);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  const render = async () => [Buffer.from('up 1\n')][Symbol.iterator]();
  const open = await servePrometheus(render, { host: '0.0.0.0', port: 0 }, { maxRequests: 0 });
  await open.close();
  const config = loadWebConfig(webConfig('web-wild.yml', MTLS_AND_BASIC_AUTH()));
  const authenticated = await servePrometheus(render, { host: '0.0.0.0', port: 0 }, { maxRequests: 0, config });
  await authenticated.close();
  await new Promise((r) => setImmediate(r)); // warnings are emitted on the next tick
  assert.deepEqual(
    warnings.filter((w) => w.includes('metrics-exporter-tcp-relay')),
    ['metrics-exporter-tcp-relay serves /metrics on 0.0.0.0:0: metrics become readable from the network, unauthenticated and unencrypted'],
  );
});
