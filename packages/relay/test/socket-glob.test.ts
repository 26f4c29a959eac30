// Globs of unix socket paths: what a pattern matches, and only sockets are taken.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { globMatcher, isSocketGlob, matchSockets } from '../src/socket-glob.js';

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
