// Process lifecycle, unix sockets, and the wildcard warning.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chownSync, existsSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { TcpBuilder } from '../src/index.js';
import { TestClient, waitFor } from './helpers.js';

function runFixture(mode: string): Promise<{ code: number | null; stdout: string; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, [new URL('./fixtures/exit-app.js', import.meta.url).pathname, mode], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout.on('data', (d) => (stdout += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 15_000);
  return new Promise((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(killer);
      resolve({ code, stdout, ms: Date.now() - started });
    }),
  );
}

test('after close() the process exits by itself, having delivered everything', async () => {
  const r = await runFixture('close');
  assert.equal(r.code, 0, 'exited normally (not killed by the 15 s guard)');
  assert.equal(JSON.parse(r.stdout).framesSent, 1000);
});

test('an app that never calls close() still exits normally', async () => {
  const r = await runFixture('no-close');
  assert.equal(r.code, 0);
  assert.ok(r.ms < 10_000, `exited in ${r.ms} ms`);
});

test('a unix socket is created with mode 0600 and removed on close', { skip: process.platform === 'win32' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mtcp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'metrics.sock');
  const recorder = await new TcpBuilder().listenAddress({ path }).build();
  assert.deepEqual(recorder.address, { path });
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const client = await TestClient.connect(recorder.address);
  await waitFor('client', () => recorder.stats().clients === 1);
  recorder.counter('over_unix').increment(9);
  await waitFor('frame', () => client.frames().length === 1);
  await recorder.close();
  await client.close();
  assert.equal(existsSync(path), false);
});

test('a socket file left by a process that died is replaced; one a live exporter listens on is not', { skip: process.platform === 'win32' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mtcp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'metrics.sock');
  // A process killed outright leaves its socket file behind, with nobody listening on it.
  const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise((r) => child.stdout.once('data', r));
  child.kill('SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.ok(existsSync(path), 'the dead process left its socket');

  const recorder = await new TcpBuilder().listenAddress({ path }).build();
  t.after(() => recorder.close());
  const client = await TestClient.connect(recorder.address);
  t.after(() => client.close());
  await waitFor('client', () => recorder.stats().clients === 1);

  // A second exporter on the same path must not take it from the live one.
  await assert.rejects(new TcpBuilder().listenAddress({ path }).build(), (e: Error & { code?: string; cause?: { code?: string } }) => e.code === 'IO' && e.cause?.code === 'EADDRINUSE');
  recorder.counter('still_mine').increment();
  await waitFor('the live exporter still serves its socket', () => client.frames().length === 1);
});

test('a unix socket path too long for the kernel is refused when the address is given', { skip: process.platform === 'win32' }, () => {
  const path = join(tmpdir(), 'x'.repeat(120), 'metrics.sock');
  assert.throws(() => new TcpBuilder().listenAddress({ path }), RangeError);
  const fits = `/tmp/${'y'.repeat(107 - '/tmp/'.length)}`;
  assert.doesNotThrow(() => new TcpBuilder().listenAddress({ path: process.platform === 'linux' ? fits : fits.slice(4) }));
});

test('binding a wildcard address warns once that metrics become readable from the network', async () => {
  const warnings: Error[] = [];
  const onWarning = (w: Error) => warnings.push(w);
  process.on('warning', onWarning);
  try {
    const recorder = await new TcpBuilder().listenAddress('0.0.0.0:0').build();
    await recorder.close();
    await new Promise((r) => setImmediate(r));
    const ours = warnings.filter((w) => (w as NodeJS.ErrnoException).code === 'MTCP_WILDCARD_LISTEN');
    assert.equal(ours.length, 1);
    assert.match(ours[0]!.message, /readable from the network/);
  } finally {
    process.off('warning', onWarning);
  }
});

test('build() never removes what is not a socket this user left behind', { skip: process.platform === 'win32' }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mtcp-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const refused = (path: string) =>
    assert.rejects(new TcpBuilder().listenAddress({ path }).build(), (e: Error & { code?: string }) => {
      assert.equal(e.code, 'IO');
      assert.match(e.message, new RegExp(path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      return true;
    });
  // A user's file where the socket should go (a path mistyped, or reused).
  const file = join(dir, 'app.db');
  writeFileSync(file, 'precious', { mode: 0o644 });
  await refused(file);
  assert.equal(readFileSync(file, 'utf8'), 'precious', 'the file is still there');
  // A symbolic link: neither it nor what it points to is touched (chmod would follow it).
  const link = join(dir, 'metrics.sock');
  symlinkSync(file, link);
  await refused(link);
  assert.ok(lstatSync(link).isSymbolicLink());
  assert.equal(statSync(file).mode & 0o777, 0o644, 'the target keeps its mode');
  // A socket nobody listens on, but another user's.
  if (process.getuid?.() === 0) {
    const other = join(dir, 'other.sock');
    const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(other)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((r) => child.stdout.once('data', r));
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    chownSync(other, 65534, 65534);
    await refused(other);
    assert.ok(lstatSync(other).isSocket(), 'the other user\'s socket is still there');
  } else {
    t.diagnostic('not root: the case of another user\'s socket is skipped (it needs chown)');
  }
});

/** The nice value (field 19 of /proc/…/stat) of each thread of this process, by thread id. */
function niceByThread(): Map<number, number> {
  const out = new Map<number, number>();
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      // After the command name, which is in parentheses and may hold spaces: state is field 3.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(tid), Number(fields[16]));
    } catch {
      // the thread ended while we looked
    }
  }
  return out;
}

test('workerNice(n) lowers the worker thread\'s priority, and only its own', { skip: process.platform !== 'linux' && 'Linux only: threads have no nice value of their own elsewhere' }, async () => {
  const before = niceByThread();
  const recorder = await new TcpBuilder().listenAddress('127.0.0.1:0').workerNice(7).build();
  try {
    const after = niceByThread();
    const lowered = [...after].filter(([tid, nice]) => !before.has(tid) && nice === (before.get(process.pid) ?? 0) + 7);
    assert.equal(lowered.length, 1, `one new thread at nice +7: ${JSON.stringify([...after])}`);
    assert.equal(after.get(process.pid), before.get(process.pid), 'the app\'s main thread keeps its priority');
    for (const [tid, nice] of before) if (after.has(tid)) assert.equal(after.get(tid), nice, `thread ${tid} kept its priority`);
  } finally {
    await recorder.close();
  }
});
