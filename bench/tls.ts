// What TLS costs the exporter, side by side with plain TCP in one run: the worker thread's CPU
// at paced rates (the app of the cpu section, one client reading), and what one client receives
// end to end in a flood and at 1 M records/s. The two alternate, run after run, so that the
// machine's other load falls on both alike.
import { makeCerts } from 'metrics-exporter-tcp-test-support/certs';
import { runApp } from './cpu.js';
import { runE2E, type Load } from './e2e.js';
import { fmt, table } from './measure.js';

export interface TlsRow {
  what: string;
  /** Per run, plain then TLS. */
  plain: number[];
  tls: number[];
}

const min = (xs: number[]): number => Math.min(...xs);
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function runTlsCost(quick: boolean, log: (s: string) => void): Promise<{ rows: TlsRow[]; text: string }> {
  const certs = makeCerts();
  try {
    const runs = quick ? 1 : 3;
    const rows: TlsRow[] = [];
    for (const rate of quick ? [1000] : [1000, 100_000, 1_000_000]) {
      const row: TlsRow = { what: `worker CPU % at ${fmt(rate, 0)} records/s`, plain: [], tls: [] };
      for (let i = 0; i < runs; i++) {
        for (const mode of ['ours', 'tls'] as const) {
          log(`tls: ${mode === 'ours' ? 'plain' : 'TLS'}, ${fmt(rate, 0)} records/s, run ${i + 1} …`);
          const { result } = await runApp(mode, rate, true, quick ? 0.2 : 3, quick ? 0.3 : 5, 100, false, certs.dir);
          (mode === 'ours' ? row.plain : row.tls).push((result.cpuMs.worker / result.measuredMs) * 100);
        }
      }
      rows.push(row);
    }
    const tls = { key: certs.server.key, cert: certs.server.cert, ca: certs.ca.cert };
    for (const load of (quick ? [1_000_000] : ['flood', 1_000_000]) as Load[]) {
      const row: TlsRow = { what: `received/s by one client, ${load === 'flood' ? 'flood' : `${fmt(load, 0)}/s`}`, plain: [], tls: [] };
      for (let i = 0; i < runs; i++) {
        for (const secure of [false, true]) {
          log(`tls: ${secure ? 'TLS' : 'plain'}, end to end ${load}, run ${i + 1} …`);
          const r = await runE2E({ bufferSize: 65_536, load, seconds: quick ? 0.3 : 2, clients: 1, slowClient: false, ...(secure ? { tls } : {}) });
          (secure ? row.tls : row.plain).push(r.receivedPerSec);
        }
      }
      rows.push(row);
    }
    const cell = (xs: number[], cpu: boolean) => (cpu ? `${min(xs).toFixed(2)} / ${median(xs).toFixed(2)}` : `${fmt(min(xs))} / ${fmt(median(xs))}`);
    const lines: (string | number)[][] = [['', 'plain (min / median)', 'TLS (min / median)', 'TLS ÷ plain (medians)']];
    for (const r of rows) {
      const cpu = r.what.startsWith('worker');
      lines.push([r.what, cell(r.plain, cpu), cell(r.tls, cpu), (median(r.tls) / median(r.plain)).toFixed(2)]);
    }
    return { rows, text: table(lines) };
  } finally {
    certs.remove();
  }
}
