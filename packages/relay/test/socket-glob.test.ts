// Globs of unix socket paths: what a pattern matches, and only sockets are taken: no symbolic
// links, only the relay's own user's (or allowed uids'), with a warning for a directory others can write.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { startRelay } from '../src/run.js';
import { globMatcher, isSocketGlob, matchSockets } from '../src/socket-glob.js';
import { logSink, relayOptions } from './harness.js';
import { waitUntil } from './wait.js';

test('globMatcher: * ? [set] [!set] in the file name, everything else literal, dotfiles only when asked', () => {
  const m = (pattern: string, name: string) => globMatcher(`/run/app/${pattern}`).test(name);
  assert.ok(m('metrics-*.sock', 'metrics-12.sock'));
  assert.ok(m('metrics-*.sock', 'metrics-.sock'));
  assert.ok(!m('metrics-*.sock', 'metrics-12.socket'));
  assert.ok(!m('metrics-*.sock', 'metrics-12xsock'), '. is literal');
  assert.ok(m('w?.sock', 'w1.sock'));
  assert.ok(!m('w?.sock', 'w12.sock'));
  assert.ok(m('w[12].sock', 'w2.sock'));
  assert.ok(!m('w[12].sock', 'w3.sock'));
  assert.ok(m('w[!12].sock', 'w3.sock'));
  assert.ok(!m('w[!12].sock', 'w1.sock'));
  assert.ok(m('a+(b).sock', 'a+(b).sock'), 'regex characters are literal');
  assert.ok(!m('*.sock', '.hidden.sock'));
  assert.ok(m('.*.sock', '.hidden.sock'));
  assert.throws(() => globMatcher('/run/*/metrics.sock'), TypeError);
});

test('isSocketGlob: socket paths with wildcards (globMatcher refuses them outside the file name)', () => {
  assert.ok(isSocketGlob('/run/app/metrics-*.sock'));
  assert.ok(isSocketGlob('./m?.sock'));
  assert.ok(isSocketGlob('/run/*/metrics.sock'));
  assert.ok(!isSocketGlob('/run/app/metrics.sock'));
  assert.ok(!isSocketGlob('127.0.0.1:5000'));
});

test('matchSockets: the unix sockets a pattern matches, sorted; plain files and a missing directory give none', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mtcp-glob-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const servers = await Promise.all(
    ['m-2.sock', 'm-1.sock'].map(async (name) => {
      const s = createServer();
      await new Promise<void>((r) => s.listen(join(dir, name), r));
      return s;
    }),
  );
  t.after(() => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))));
  writeFileSync(join(dir, 'm-3.sock'), 'not a socket');
  assert.deepEqual(await matchSockets(join(dir, 'm-*.sock')), [join(dir, 'm-1.sock'), join(dir, 'm-2.sock')]);
  assert.deepEqual(await matchSockets(join(dir, 'missing', 'm-*.sock')), []);
});

/**
 * A relay of `glob` (rescanned every 50 ms) until it has read `own` and rescanned a few times
 * more; the exporters it reads then, and its log.
 */
async function relayedBy(glob: string, own: string, extra: Partial<Parameters<typeof startRelay>[0]> = {}): Promise<{ exporters: string[]; log: string }> {
  const sink = logSink();
  const relay = await startRelay(relayOptions([glob], { prometheus: '127.0.0.1:0', rescanMs: 50, threads: 1, log: sink.log, ...extra }));
  try {
    await waitUntil('the own socket read', async () => (await relay.snapshot()).exporters.some((e) => e.exporter === own && e.state === 'connected'));
    await new Promise((r) => setTimeout(r, 150)); // three rescans more
    return { exporters: (await relay.snapshot()).exporters.map((e) => e.exporter).sort(), log: sink.text };
  } finally {
    await relay.close();
  }
}

/** A unix socket server at `path` (closed after the test). */
async function socketAt(t: { after(fn: () => unknown): void }, path: string): Promise<void> {
  const s = createServer((c) => c.on('error', () => {}));
  await new Promise<void>((r) => s.listen(path, r));
  t.after(() => new Promise<void>((r) => s.close(() => r())));
}

test('a glob skips symbolic links: a link to a socket elsewhere is not relayed, and says why once', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mtcp-glob-'));
  const elsewhere = mkdtempSync(join(tmpdir(), 'mtcp-private-'));
  t.after(() => [dir, elsewhere].forEach((d) => rmSync(d, { recursive: true, force: true })));
  await socketAt(t, join(dir, 'm-own.sock'));
  await socketAt(t, join(elsewhere, 'app.sock'));
  symlinkSync(join(elsewhere, 'app.sock'), join(dir, 'm-link.sock'));
  const { exporters, log } = await relayedBy(join(dir, 'm-*.sock'), join(dir, 'm-own.sock'));
  assert.deepEqual(exporters, [join(dir, 'm-own.sock')]);
  assert.equal(log.split(`${join(dir, 'm-link.sock')}: skipped, a symbolic link`).length - 1, 1, log);
});

const notRoot = process.getuid?.() === 0 ? false : 'needs root (to chown a socket to uid 65534)';

test("a glob takes only the relay's own user's sockets, and another uid's with --allow-uid", { skip: notRoot }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mtcp-glob-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  await socketAt(t, join(dir, 'm-own.sock'));
  await socketAt(t, join(dir, 'm-nobody.sock'));
  chownSync(join(dir, 'm-nobody.sock'), 65534, 65534);
  const refused = await relayedBy(join(dir, 'm-*.sock'), join(dir, 'm-own.sock'));
  assert.deepEqual(refused.exporters, [join(dir, 'm-own.sock')]);
  assert.match(refused.log, /m-nobody\.sock: skipped, owned by uid 65534 \(not this user, uid 0\): --allow-uid 65534 accepts it/);
  const allowed = await relayedBy(join(dir, 'm-*.sock'), join(dir, 'm-own.sock'), { allowUids: [65534] });
  assert.deepEqual(allowed.exporters, [join(dir, 'm-nobody.sock'), join(dir, 'm-own.sock')]);
});

test('a glob in a directory that other users can write warns, once per directory', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mtcp-glob-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  chmodSync(dir, 0o1777);
  await socketAt(t, join(dir, 'm-own.sock'));
  const { log } = await relayedBy(join(dir, 'm-*.sock'), join(dir, 'm-own.sock'));
  assert.equal(log.split(`relay: warning: ${dir} is writable by other users (mode 1777)`).length - 1, 1, log);
  // A directory only the relay's user can write: no warning.
  chmodSync(dir, 0o700);
  assert.doesNotMatch((await relayedBy(join(dir, 'm-*.sock'), join(dir, 'm-own.sock'))).log, /warning/);
});

test('a socket a glob found and that is swapped for a link is not connected to again (checked before each connection)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mtcp-glob-'));
  const elsewhere = mkdtempSync(join(tmpdir(), 'mtcp-private-'));
  t.after(() => [dir, elsewhere].forEach((d) => rmSync(d, { recursive: true, force: true })));
  const conns = new Set<Socket>();
  const own = createServer((c) => (conns.add(c), c.on('error', () => {})));
  await new Promise<void>((r) => own.listen(join(dir, 'm-a.sock'), r));
  let reached = 0;
  const secret = createServer((c) => (reached++, c.destroy()));
  await new Promise<void>((r) => secret.listen(join(elsewhere, 'app.sock'), r));
  t.after(() => new Promise<void>((r) => secret.close(() => r())));
  const sink = logSink();
  // No rescan during the test: only the link's own check stands between it and the link.
  const relay = await startRelay(relayOptions([join(dir, 'm-*.sock')], { prometheus: '127.0.0.1:0', rescanMs: 60_000, threads: 1, log: sink.log }));
  t.after(() => relay.close());
  await waitUntil('connected', async () => (await relay.snapshot()).exporters[0]?.state === 'connected');
  for (const c of conns) c.destroy();
  await new Promise<void>((r) => own.close(() => r())); // removes m-a.sock
  symlinkSync(join(elsewhere, 'app.sock'), join(dir, 'm-a.sock'));
  await waitUntil('the refusal logged', async () => sink.text.includes(`${join(dir, 'm-a.sock')}: not connecting, a symbolic link`));
  await new Promise((r) => setTimeout(r, 300)); // a few retries
  assert.equal(reached, 0, 'the socket behind the link was never connected to');
  assert.equal(sink.text.split('not connecting').length - 1, 1, 'said once');
});
