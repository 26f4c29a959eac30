// One relay thread's share of the exporters: their links, their series, and the sweep that
// forgets what has gone stale. The same class runs in the main thread and in worker threads.
import type { ClientProtocol, SeriesMetadata } from 'metrics-exporter-tcp/client';
import { SeriesBudget } from './budget.js';
import { applierFor, type DecoderName } from './appliers.js';
import { ExporterLink, type LinkState } from './exporter-link.js';
import { RelayStore, viewOf, type SeriesView } from './store.js';
import { warmUp } from './warm-up.js';

/** What every reader of a relay shares (plain data: it is cloned into worker threads). */
export interface ReaderSettings {
  readonly protocol: ClientProtocol | 'auto';
  readonly buckets: readonly number[];
  readonly maxSeries: number;
  /** The {@link SeriesBudget}'s shared memory. */
  readonly budget: SharedArrayBuffer;
  /** An exporter unreachable this long (ms) has its series dropped; so has any series not updated this long with `expireSeries`. */
  readonly staleAfterMs: number;
  readonly expireSeries: boolean;
  /** How streams are decoded. */
  readonly decoder: DecoderName;
}

/** One exporter as a reader reports it. */
export interface ExporterSnapshot {
  readonly exporter: string;
  readonly state: LinkState;
  /** Events applied since the relay began reading it. */
  readonly events: number;
  readonly series: readonly SeriesView[];
  /** By metric name. */
  readonly metadata: ReadonlyMap<string, SeriesMetadata>;
}

/** What a reader (or, merged, the whole relay) holds at one moment. */
export interface ReaderSnapshot {
  readonly exporters: readonly ExporterSnapshot[];
  /** Exporters given up because their stream was malformed. */
  readonly decodeErrors: number;
  /** Series and metadata names refused beyond `maxSeries`. */
  readonly refused: number;
}

/** Reads a set of exporters on the current thread. */
export class Reader {
  private readonly store: RelayStore;
  private readonly links = new Map<string, ExporterLink>();
  private readonly sweeper: NodeJS.Timeout;
  private decodeErrors = 0;

  constructor(
    private readonly settings: ReaderSettings,
    /** This reader's slot in the shared {@link SeriesBudget}, from 0. */
    slot: number,
    private readonly log: (line: string) => void,
  ) {
    this.store = new RelayStore(settings.buckets, new SeriesBudget(settings.maxSeries, 0, settings.budget, slot), () =>
      log(`relay: more than ${settings.maxSeries} series; new series are refused`),
    );
    warmUp(settings.decoder, settings.protocol, settings.buckets);
    // Often enough that nothing outlives stale-after by more than a quarter of it (or 1 s).
    this.sweeper = setInterval(() => this.sweep(Date.now()), Math.max(10, Math.min(1000, settings.staleAfterMs / 4)));
    this.sweeper.unref();
  }

  /** Starts reading `address` (no-op if it is read already). @throws TypeError for a malformed address. */
  add(address: string): void {
    const old = this.links.get(address);
    if (old !== undefined && old.state !== 'removed') return;
    const link = new ExporterLink(address, this.store.of(address), {
      protocol: this.settings.protocol,
      applier: applierFor(this.settings.decoder),
      log: this.log,
      onMalformed: () => this.decodeErrors++,
    });
    link.events = old?.events ?? 0; // a path that came back before going stale keeps its count
    this.links.set(address, link);
  }

  /** Stops reading `address`; its series are dropped once stale, then it is forgotten. */
  async remove(address: string): Promise<void> {
    await this.links.get(address)?.close();
  }

  snapshot(): ReaderSnapshot {
    const exporters: ExporterSnapshot[] = [];
    for (const link of this.links.values()) {
      exporters.push({
        exporter: link.address,
        state: link.state,
        events: link.events,
        series: [...link.series.series.values()].map(viewOf),
        metadata: link.series.metadata,
      });
    }
    return { exporters, decodeErrors: this.decodeErrors, refused: this.store.refused };
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([...this.links.values()].map((l) => l.close()));
  }

  /** Drops the series of exporters unreachable for stale-after (forgetting removed ones), and with expireSeries the series not updated for as long. */
  private sweep(nowMs: number): void {
    const before = nowMs - this.settings.staleAfterMs;
    for (const [address, link] of this.links) {
      if (link.downSince !== undefined && link.downSince < before) {
        if (link.state !== 'removed') {
          link.series.clear();
        } else {
          this.store.drop(address);
          this.links.delete(address);
        }
      } else if (this.settings.expireSeries) {
        link.series.expire(before);
      }
    }
  }
}
