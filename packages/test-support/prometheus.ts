// A real Prometheus (Debian's package) scraping targets every second, for the tests of the
// exporter's own /metrics and the relay's; queried through its HTTP API.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const PROMETHEUS = spawnSync('prometheus', ['--version']).status === 0 ? 'prometheus' : undefined;
export const NO_PROMETHEUS = 'prometheus not found (Debian package prometheus; .ci/run installs it)';
if (PROMETHEUS === undefined) {
  if (process.env.CI) throw new Error(`${NO_PROMETHEUS}: CI must run the Prometheus tests`);
  console.log(`# SKIP Prometheus tests: ${NO_PROMETHEUS}`);
}

export interface PrometheusServer {
  /** The values of an instant query, sorted; `[]` on any error (e.g. not up yet). */
  query(q: string): Promise<number[]>;
  /**
   * Polls `q` until its values are `want`, or `want` holds of them; resolves with them, or
   * rejects with the last after `ms`.
   */
  until(q: string, want: readonly number[] | ((values: number[]) => boolean), ms?: number): Promise<number[]>;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

/** How Prometheus runs and scrapes. */
export interface PrometheusOptions {
  /** Feature flags to enable (`native-histograms`). */
  readonly features?: readonly string[];
  /** The scrape job's name (the `job` label). Default `app`. */
  readonly jobName?: string;
  /** More of the scrape config: YAML lines indented by 4 (`scheme`, `basic_auth`, `tls_config`). */
  readonly job?: string;
}

/** Starts Prometheus scraping `targets` (`host:port`) every second. */
export async function startPrometheus(targets: string[], { features = [], jobName = 'app', job = '' }: PrometheusOptions = {}): Promise<PrometheusServer> {
  const dir = mkdtempSync(join(tmpdir(), 'mtcp-prom-'));
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ${jobName}\n${job}    static_configs:\n      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]\n`,
  );
  const port = await freePort();
  const args = [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`];
  if (features.length > 0) args.push(`--enable-feature=${features.join(',')}`);
  const prom = spawn(PROMETHEUS!, args, { stdio: 'ignore' });
  const query = async (q: string): Promise<number[]> => {
    try {
      const res = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
      const body = (await res.json()) as { data?: { result: { value: [number, string] }[] } };
      return (body.data?.result ?? []).map((r) => Number(r.value[1])).sort((a, b) => a - b);
    } catch {
      return [];
    }
  };
  return {
    query,
    async until(q, want, ms = 30_000) {
      const ok = typeof want === 'function' ? want : (v: number[]) => JSON.stringify(v) === JSON.stringify(want);
      let last: number[] = [];
      for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 250))) {
        last = await query(q);
        if (ok(last)) return last;
      }
      throw new Error(`${q}: last gave ${JSON.stringify(last)}`);
    },
    async close() {
      await new Promise((r) => {
        prom.once('exit', r);
        prom.kill();
      });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
