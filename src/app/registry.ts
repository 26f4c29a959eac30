import { STATE_BYTES, STATE_PAGE_KEYS } from '../shared/layout.js';
import type { ControlMessage, MetricKind } from '../shared/messages.js';
import { checkDescription, checkUnit } from './units.js';
import { normalizeKey } from './key.js';
import type { RingWriter } from './ring-writer.js';

/** Id given to keys refused by the `maxKeys` cap. */
export const REFUSED = -1;

/**
 * Gives every distinct key of one producer a small integer id, once, and tells the worker
 * about it before any record that uses it. Also forwards metadata. Keeps what it sent so that
 * a restarted worker can be told again ({@link snapshot}).
 */
export class Registry {
  private readonly ids = new Map<string, number>();
  /** Key announcements sent, for {@link snapshot}; undefined when nobody will ask for one. */
  private readonly sentKeys: ControlMessage[] | undefined;
  private readonly sentMeta = new Map<string, ControlMessage>();
  private warned = false;
  private warnedMeta = false;
  /** `replayOnConnect`: this thread's state pages (see `State`), one per 1024 keys, made as keys come. */
  private readonly pages: SharedArrayBuffer[] = [];

  /**
   * @param replay whether the exporter keeps every counter's total and gauge's value (for
   *   `replayOnConnect`, or the Prometheus endpoint): records made with no client connected go to
   *   this thread's state pages
   * @param endpoint whether the exporter serves the Prometheus endpoint: histogram records always
   *   go to the ring (the worker buckets each observation)
   * @param keepSnapshot whether to keep what it announces for {@link snapshot} (the recorder's own
   *   registry; the host keeps what other threads announce)
   * @param capture whether the exporter is a capture's (`captureMetrics()`): gauge records always go
   *   to the ring too
   */
  constructor(
    private readonly writer: RingWriter,
    private readonly maxKeys: number,
    readonly replay = false,
    readonly endpoint = false,
    keepSnapshot = false,
    readonly capture = false,
  ) {
    this.sentKeys = keepSnapshot ? [] : undefined;
  }

  /** `replayOnConnect`: key `id`'s state slots (see `State`), as doubles and as int32s. */
  stateOf(id: number): { f64: Float64Array; i32: Int32Array } {
    const page = this.pages[Math.floor(id / STATE_PAGE_KEYS)]!;
    const at = (id % STATE_PAGE_KEYS) * STATE_BYTES;
    return { f64: new Float64Array(page, at, STATE_BYTES / 8), i32: new Int32Array(page, at, STATE_BYTES / 4) };
  }

  /**
   * The id of a key, allocating and announcing it on first use.
   * @returns {@link REFUSED} when the key is new and the `maxKeys` cap is reached.
   * @throws TypeError / RangeError for an invalid key (see `normalizeKey`).
   */
  keyId(key: unknown): number {
    const k = normalizeKey(key);
    const known = this.ids.get(k.canonical);
    if (known !== undefined) return known;
    if (this.ids.size >= this.maxKeys) {
      if (!this.warned) {
        this.warned = true;
        process.emitWarning(
          `metrics-exporter-tcp: more than ${this.maxKeys} distinct keys; new keys are refused and their records counted in stats().dropped.invalid`,
          { code: 'MTCP_MAX_KEYS' },
        );
      }
      return REFUSED;
    }
    const id = this.ids.size;
    this.ids.set(k.canonical, id);
    const msg: Extract<ControlMessage, { t: 'key' }> = { t: 'key', pos: 0, seq: 0, id, canonical: k.canonical, name: k.name, labels: k.labels };
    if (this.replay && id % STATE_PAGE_KEYS === 0) {
      // A new page of state, shared with the worker along with its first key.
      const sab = new SharedArrayBuffer(STATE_PAGE_KEYS * STATE_BYTES);
      this.pages.push(sab);
      msg.statePage = sab;
    }
    this.sentKeys?.push(msg);
    this.writer.control(msg);
    return id;
  }

  /**
   * Records unit and description for the key's name (metadata is per name on the wire) and
   * sends it to the worker, which stores it and forwards it to every client.
   */
  describe(kind: MetricKind, key: unknown, unit: unknown, description: unknown, buckets?: number[]): void {
    const { name } = normalizeKey(key);
    if (!this.sentMeta.has(name) && this.sentMeta.size >= this.maxKeys) {
      // Metadata is kept and replayed to every client: it is bounded like keys are.
      if (!this.warnedMeta) {
        this.warnedMeta = true;
        process.emitWarning(`metrics-exporter-tcp: metadata for more than ${this.maxKeys} names; further names are not described`, {
          code: 'MTCP_MAX_KEYS',
        });
      }
      return;
    }
    const msg: Extract<ControlMessage, { t: 'meta' }> = {
      t: 'meta',
      pos: 0,
      seq: 0,
      name,
      kind,
      unit: checkUnit(unit),
      description: checkDescription(description),
    };
    if (buckets !== undefined) msg.buckets = buckets;
    this.sentMeta.set(name, msg);
    this.writer.control(msg);
  }

  /** Everything this registry has told the worker, for a worker that starts afresh (with `keepSnapshot`). */
  snapshot(): ControlMessage[] {
    return [...(this.sentKeys ?? []), ...this.sentMeta.values()];
  }
}
