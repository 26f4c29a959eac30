// One relay thread's share of the exporters: their links, their series, and the sweep that
// forgets what has gone stale. It runs in a worker thread of its own, so that reading exporters
// never waits for the main thread (HTTP, OTLP), and tells the main thread what changed.
import type { ClientProtocol } from 'metrics-exporter-tcp/client';
import { SeriesBudget } from './budget.js';
import { applierFor, type DecoderName } from './appliers.js';
import { ExporterLink, type LinkState } from './exporter-link.js';
import type { HeldFill } from './fill-hold.js';
import type { LinkTls } from './link-tls.js';
import { RelayStore, type Refusal, type StoreChanges } from './store.js';
import { warmUp } from './warm-up.js';

/** What every reader of a relay shares (plain data: it is cloned into worker threads). */
export interface ReaderSettings {
  readonly protocol: ClientProtocol | 'auto';
  /** Bucket bounds for every histogram; undefined: by each one's unit. */
  readonly buckets: readonly number[] | undefined;
  readonly maxSeries: number;
  readonly maxBytes: number;
  readonly maxSeriesPerExporter: number;
  readonly maxBytesPerExporter: number;
  /** The {@link SeriesBudget}'s shared memory. */
  readonly budget: SharedArrayBuffer;
  /** An exporter unreachable this long (ms) has its series dropped; so has any gauge not updated this long with `expireSeries`. */
  readonly staleAfterMs: number;
  readonly expireSeries: boolean;
  /** How long an exporter's fill levels are held at their largest, in ms. */
  readonly peakHoldMs: number;
  /** How streams are decoded. */
  readonly decoder: DecoderName;
  /** The first delay before reading an exporter again after a malformed stream, in ms. */
  readonly malformedRetryMs: number;
  /** Connect to exporters over TLS. */
  readonly tls?: LinkTls;
}

/** One exporter's link and what its stream cost, as a reader reports it. */
export interface ExporterStatus {
  readonly exporter: string;
  readonly state: LinkState;
  /** Events read since the relay began reading it. */
  readonly events: number;
  /** Connections made to it. */
  readonly connects: number;
  /** Connections that ended on a malformed stream. */
  readonly decodeErrors: number;
  /** Frames refused, by why (see {@link Refusal}). */
  readonly refused: Readonly<Record<Refusal, number>>;
  /** Histogram observations dropped because they were NaN. */
  readonly invalidValues: number;
  /** Its fill levels, held at their largest for `--peak-hold`, once it has said its buffer size. */
  readonly fill?: HeldFill;
}

/** What changed on a reader since it was last asked, and every exporter's status now. */
export interface ReaderChanges extends StoreChanges {
  readonly exporters: readonly ExporterStatus[];
}

/** Reads a set of exporters on the current thread. */
export class Reader {
  private readonly store: RelayStore;
  private readonly links = new Map<string, ExporterLink>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(
    private readonly settings: ReaderSettings,
    /** This reader's slot in the shared {@link SeriesBudget}, from 0. */
    slot: number,
    private readonly log: (line: string) => void,
  ) {
    this.store = new RelayStore(settings, new SeriesBudget(settings.maxSeries, 0, settings.budget, slot, settings.maxBytes), log);
    warmUp(settings.decoder, settings.protocol, settings);
    // Often enough that nothing outlives stale-after by more than a quarter of it (or 1 s).
    this.sweeper = setInterval(() => this.sweep(Date.now()), Math.max(10, Math.min(1000, settings.staleAfterMs / 4)));
    this.sweeper.unref();
  }

  /**
   * Starts reading `address` (no-op if it is read already); `owners`: for a socket a glob found,
   * the uids it may belong to. @throws TypeError for a malformed address.
   */
  add(address: string, owners?: readonly number[]): void {
    const old = this.links.get(address);
    if (old !== undefined && old.state !== 'removed') return;
    const link = new ExporterLink(address, this.store.of(address), {
      protocol: this.settings.protocol,
      applier: applierFor(this.settings.decoder),
      log: this.log,
      malformedRetryMs: this.settings.malformedRetryMs,
      owners: owners === undefined ? undefined : new Set(owners),
      tls: this.settings.tls,
    });
    if (old !== undefined) {
      // A path that came back before going stale keeps its counts.
      link.events = old.events;
      link.connects = old.connects;
      link.decodeErrors = old.decodeErrors;
    }
    this.links.set(address, link);
  }

  /** Stops reading `address`; its series are dropped once stale, then it is forgotten. */
  async remove(address: string): Promise<void> {
    await this.links.get(address)?.close();
  }

  /** What changed since the last call (see {@link RelayStore.changes}), and every exporter's status. */
  changes(): { changes: ReaderChanges; transfer: ArrayBuffer[] } {
    const { changes, transfer } = this.store.changes();
    const now = Date.now();
    const exporters = [...this.links.values()].map((l): ExporterStatus => {
      const status: ExporterStatus = {
        exporter: l.address,
        state: l.state,
        events: l.events,
        connects: l.connects,
        decodeErrors: l.decodeErrors,
        refused: { ...l.series.counts.refused },
        invalidValues: l.series.counts.invalidValues,
      };
      const fill = l.series.fill.held(now);
      return fill === undefined ? status : { ...status, fill };
    });
    return { changes: { ...changes, exporters }, transfer };
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
    await Promise.all([...this.links.values()].map((l) => l.close()));
  }

  /** Drops the series of exporters unreachable for stale-after (forgetting removed ones), and with expireSeries what was not updated for as long. */
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
        link.series.expire(before, link.state === 'connected');
      }
    }
  }
}
