// Serves the relay's series to Prometheus: GET /metrics in the text exposition format, written
// by prom-client's Registry (metric families are custom collectors read at scrape time).
import { createServer, type Server } from 'node:http';
import type { BoundAddress, ListenAddress } from '../shared/address.js';
import { familyName, sanitizeLabel } from './naming.js';
import type { Series, SeriesStore } from './store.js';

type PromValue = { value: number; labels: Record<string, string | number>; metricName?: string };

/** One family: the series that map to one Prometheus name. */
class Family {
  readonly series: Series[] = [];
  readonly aggregator = 'sum';
  constructor(
    readonly name: string,
    readonly type: 'counter' | 'gauge' | 'histogram',
    public help: string,
    private readonly buckets: readonly number[],
  ) {}

  get(): { name: string; help: string; type: string; aggregator: string; values: PromValue[] } {
    const values: PromValue[] = [];
    for (const s of this.series) {
      const labels: Record<string, string> = {};
      for (const [k, v] of Object.entries(s.labels)) labels[sanitizeLabel(k)] = v;
      labels.exporter = s.exporter;
      if (this.type !== 'histogram') {
        values.push({ value: s.value, labels });
        continue;
      }
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i]!;
        values.push({ metricName: `${this.name}_bucket`, value: cumulative, labels: { ...labels, le } });
      });
      values.push({ metricName: `${this.name}_bucket`, value: s.count, labels: { ...labels, le: '+Inf' } });
      values.push({ metricName: `${this.name}_sum`, value: s.sum, labels });
      values.push({ metricName: `${this.name}_count`, value: s.count, labels });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {}
}

export interface PrometheusEndpoint {
  readonly address: BoundAddress;
  close(): Promise<void>;
}

/** Starts the /metrics endpoint. prom-client is imported here only, so recording apps never load it. */
export async function servePrometheus(store: SeriesStore, listen: ListenAddress): Promise<PrometheusEndpoint> {
  const { Registry } = await import('prom-client');
  const registry = new Registry();
  const families = new Map<string, Family>();
  const known = new WeakSet<Series>();

  /** Sorts new series into families (at scrape time, so recording stays cheap). */
  const refresh = (): void => {
    for (const s of store.series.values()) {
      if (known.has(s)) continue;
      known.add(s);
      const meta = store.describe(s.exporter, s.name);
      const name = familyName(s.name, s.kind, meta.unit);
      let f = families.get(name);
      if (f === undefined) {
        f = new Family(name, s.kind, meta.description ?? `${s.name} (from metrics-exporter-tcp)`, store.buckets);
        families.set(name, f);
        registry.registerMetric(f as never);
      } else if (f.type !== s.kind) {
        continue; // a name used as two kinds: Prometheus cannot hold both under one name
      }
      if (meta.description !== undefined) f.help = meta.description;
      f.series.push(s);
    }
  };

  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found: GET /metrics\n');
      return;
    }
    refresh();
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
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
