// What an app's process grows by (RSS): the same app recording 1 000 records/s into nothing,
// into prom-client's registry, and into our exporter, idle (no client) and with a client in
// this process reading it; and, for the floor under ours, an app that only starts a worker
// thread (idle, or listening on a TCP port) and records into nothing. Each variant runs in fresh
// processes, interleaved, and the medians are compared with the baseline's.
import { spawn } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { createInterface } from 'node:readline';
import type { MemoryResult } from './memory-app.js';
import { table } from './measure.js';

const MODES = ['none', 'prom-client', 'worker', 'worker-listening', 'ours', 'ours-client'] as const;
type Mode = (typeof MODES)[number];

export interface MemoryRow {
  mode: Mode;
  rssMiB: number[];
  /** Median RSS over the baseline's median, MiB. */
  addedMiB: number;
}

async function runOnce(mode: Mode, seconds: number): Promise<MemoryResult> {
  const child = spawn(process.execPath, ['--expose-gc', new URL('./memory-app.js', import.meta.url).pathname, mode, String(seconds)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  let client: Socket | undefined;
  if (mode === 'ours-client') {
    const { port } = JSON.parse((await lines.next()).value as string) as { port: number };
    client = connect(port, '127.0.0.1');
    client.on('data', () => {}); // reads and discards: a client that keeps up
    await new Promise((r) => client!.once('connect', r));
    child.stdin!.write('connected\n');
  }
  const result = JSON.parse((await lines.next()).value as string) as MemoryResult;
  await new Promise((r) => child.once('exit', r));
  client?.destroy();
  return result;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

export async function runMemory(quick: boolean, log: (s: string) => void): Promise<{ rows: MemoryRow[]; text: string }> {
  const rounds = quick ? 1 : 5;
  const seconds = quick ? 1 : 5;
  const rss = new Map<Mode, number[]>(MODES.map((m) => [m, []]));
  for (let r = 0; r < rounds; r++) {
    for (const mode of MODES) {
      log(`memory: ${mode}, round ${r + 1} of ${rounds}`);
      rss.get(mode)!.push((await runOnce(mode, seconds)).rss / 2 ** 20);
    }
  }
  const base = median(rss.get('none')!);
  const rows = MODES.map((mode) => ({ mode, rssMiB: rss.get(mode)!, addedMiB: median(rss.get(mode)!) - base }));
  const text = table([
    ['app', 'RSS MiB median', 'min', 'max', 'added MiB'],
    ...rows.map((r) => [r.mode, median(r.rssMiB).toFixed(1), Math.min(...r.rssMiB).toFixed(1), Math.max(...r.rssMiB).toFixed(1), r.mode === 'none' ? '—' : `+${r.addedMiB.toFixed(1)}`]),
  ]);
  return { rows, text };
}
