// What an app recorded just before its process ends is delivered to the connected clients, or
// counted, however it ends: process.exit(), the script ending, an uncaught exception, or a
// signal with closeOnSignals() (issue "Nothing lost").
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { TestClient, tally, type Tally } from './helpers.js';

async function run(mode: string): Promise<{ code: number | null; signal: string | null; received: number; dropped: Tally['dropped']; stderr: string }> {
  const child = spawn(process.execPath, [new URL('./fixtures/exit-recording.js', import.meta.url).pathname, mode], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const exited = new Promise<[number | null, string | null]>((r) => child.once('exit', (code, signal) => r([code, signal])));
  const line = await new Promise<string>((resolve) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('\n')) resolve(out.slice(0, out.indexOf('\n')));
    });
  });
  const client = await TestClient.connect(JSON.parse(line));
  if (mode === 'signal-two') {
    // A slow reader: the exporter that has it needs a while to deliver at close.
    client.socket.pause();
    setTimeout(() => client.socket.resume(), 400);
  }
  const [code, signal] = await exited;
  await new Promise<void>((r) => (client.closed ? r() : client.socket.once('close', () => r())));
  clearTimeout(killer);
  const got = tally(client.events());
  return { code, signal, received: got.metrics, dropped: got.dropped, stderr };
}

for (const [mode, expect] of [
  ['exit', { code: 0, signal: null }],
  ['end', { code: 0, signal: null }],
  ['throw', { code: 1, signal: null }],
  ['signal', { code: null, signal: 'SIGTERM' }],
  ['signal-two', { code: null, signal: 'SIGTERM' }],
] as const) {
  test(`the last records reach the client when the process ends by ${mode}`, async () => {
    const r = await run(mode);
    assert.deepEqual({ code: r.code, signal: r.signal }, expect, r.stderr);
    assert.deepEqual({ received: r.received, dropped: r.dropped }, { received: 20_000, dropped: { ring_full: 0, client_queue: 0, invalid: 0 } });
  });
}
