// Serves the relay's series to Prometheus: GET /metrics in the text exposition format, written
// by prom-client's Registry (metric families are custom collectors read at scrape time).
import { createServer, type Server } from 'node:http';
import type { BoundAddress, ListenAddress } from 'metrics-exporter-tcp';
import type { Writable } from 'node:stream';
import { HEALTH_NAMES, healthMetrics } from './health.js';
import { exportLabels, familyName } from './naming.js';
import type { ReaderSnapshot } from './reader.js';
import type { SeriesView } from './store.js';

type PromValue = { value: number; labels: Record<string, string | number>; metricName?: string };

/** One family: the series that map to one Prometheus name, as prom-client's collector reads it. */
class Family {
  readonly values: PromValue[] = [];
  readonly aggregator = 'sum';
  /** Label sets already written: two sources that sanitize to the same series keep the first. */
  private readonly seen = new Set<string>();
  constructor(
    readonly name: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    public help: string,
  ) {}

  add(s: SeriesView): void {
    const labels = exportLabels(s.labels, s.scope, this.type === 'histogram');
    const id = JSON.stringify(labels);
    if (this.seen.has(id)) return;
    this.seen.add(id);
    const h = s.histogram;
    if (h === undefined) {
      this.values.push({ value: s.kind === 'counter' ? Number(s.total) : s.value, labels });
      return;
    }
    let cumulative = 0;
    h.bounds.forEach((le, i) => {
      cumulative += h.counts[i]!;
      this.values.push({ metricName: `${this.name}_bucket`, value: cumulative, labels: { ...labels, le } });
    });
    this.values.push({ metricName: `${this.name}_bucket`, value: h.count, labels: { ...labels, le: '+Inf' } });
    this.values.push({ metricName: `${this.name}_sum`, value: h.sum, labels });
    this.values.push({ metricName: `${this.name}_count`, value: h.count, labels });
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: PromValue[] } {
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values: this.values };
  }

  reset(): void {}
}

/**
 * The families of one scrape, built afresh each time so that metadata arriving late (a unit
 * that renames a family, a description) always applies: the relay's health first, then the
 * exporters'. A name that two kinds map to goes to the first; the others are counted in
 * `conflicts` and left out (Prometheus cannot hold both).
 */
function families(snap: ReaderSnapshot): { families: Family[]; conflicts: number } {
  const byName = new Map<string, Family>();
  const taken = new Set<string>(HEALTH_NAMES); // histogram _bucket/_sum/_count names too
  let conflicts = 0;
  for (const e of snap.exporters) for (const s of e.series) {
    const meta = e.metadata.get(s.name);
    const name = familyName(s.name, s.kind, meta?.unit);
    let f = byName.get(name);
    if (f === undefined) {
      const own = s.kind === 'histogram' ? [name, `${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
      if (own.some((n) => taken.has(n))) {
        conflicts++;
        continue;
      }
      own.forEach((n) => taken.add(n));
      f = new Family(name, s.kind, meta?.description ?? `${s.name} (from metrics-exporter-tcp)`);
      byName.set(name, f);
    } else if (f.type !== s.kind) {
      conflicts++;
      continue;
    }
    if (meta?.description !== undefined) f.help = meta.description;
    f.add(s);
  }
  const health = healthMetrics(snap).map((h) => {
    const f = new Family(h.name, h.type, h.help);
    for (const { labels, value } of h.samples) f.values.push({ labels, value });
    return f;
  });
  return { families: [...health, ...byName.values()], conflicts };
}

/** The relay's GET /metrics server. */
export interface PrometheusEndpoint {
  /** What was bound (the real port when 0 was asked). */
  readonly address: BoundAddress;
  /** Stops serving. */
  close(): Promise<void>;
}

/** Starts the /metrics endpoint. prom-client is imported here only, so recording apps never load it. */
export async function servePrometheus(snapshot: () => Promise<ReaderSnapshot>, listen: ListenAddress, log: Writable): Promise<PrometheusEndpoint> {
  const { Registry } = await import('prom-client');
  let reportedConflicts = 0;
  const scrape = async (): Promise<{ text: string; contentType: string }> => {
    const registry = new Registry();
    const { families: fs, conflicts } = families(await snapshot());
    for (const f of fs) registry.registerMetric(f as never);
    if (conflicts > reportedConflicts) {
      log.write(`relay: ${conflicts} series left out of /metrics: their name is already used by another kind\n`);
      reportedConflicts = conflicts;
    }
    return { text: await registry.metrics(), contentType: registry.contentType };
  };

  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found: GET /metrics\n');
      return;
    }
    scrape().then(
      ({ text, contentType }) => res.writeHead(200, { 'content-type': contentType }).end(text),
      (err: Error) => res.writeHead(500).end(`${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    if ('path' in listen) server.listen(listen.path, resolve);
    else server.listen(listen.port, listen.host, resolve);
  });
  const a = server.address();
  const address: BoundAddress = 'path' in listen ? listen : { host: listen.host, port: typeof a === 'object' && a ? a.port : listen.port };
  return {
    address,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
