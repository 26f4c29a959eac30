import type { Protocol } from '../../shared/messages.js';
import { DROPPED_METRIC, LOSS_REASONS } from '../../shared/protocol.js';
import { Chunk } from '../chunk.js';
import { FrameEncoder } from '../encoder.js';
import { KeyTable, type KeyEntry } from '../keys.js';
import { encodeMetadata } from '../metadata.js';

/** Why a client did not get a record: the `reason` label of the in-band drop counter. */
export const enum Loss {
  /** The record was dropped by a full ring while the client was connected. */
  RingFull = 0,
  /** The client's own queue dropped the frame (drop oldest). */
  ClientQueue = 1,
  /** The record's value was invalid (or its key refused by `maxKeys`). */
  Invalid = 2,
}
/** A client gets at most one report per this many ms. */
export const REPORT_EVERY_MS = 100;

/**
 * Encodes the in-band drop counter: a client that lost records learns how many and why, in the
 * stream itself, as an ordinary counter `metrics_exporter_tcp_dropped{reason}` (unit `count`)
 * that any client of the wire format shows. Each frame carries the increments since that
 * client's previous report. Its metadata frame goes to a client just before its first report,
 * so a client that loses nothing sees exactly the seed's stream.
 */
export class LossReport {
  private readonly encoder: FrameEncoder;
  private readonly keys: KeyEntry[];
  /** The metadata frame, as a chunk of one frame. */
  readonly metadata: Chunk;

  constructor(protocol: Protocol) {
    this.encoder = new FrameEncoder(protocol);
    const table = new KeyTable();
    this.keys = LOSS_REASONS.map((reason) => table.entry(`\0loss:${reason}`, DROPPED_METRIC, [['reason', reason]]));
    this.metadata = Chunk.of(
      encodeMetadata(DROPPED_METRIC, 'counter', 'count', 'Records this client did not receive, by reason (ring_full, client_queue, invalid)'),
    );
  }

  /** One frame per reason with a nonzero count in `lost` (indexed by {@link Loss}), stamped `nowMs`. */
  encode(lost: Float64Array, nowMs: number): Chunk | null {
    this.encoder.begin(nowMs);
    for (let r = 0; r < lost.length; r++) {
      const n = lost[r]!;
      if (n > 0) this.encoder.counter(this.keys[r]!, n % 0x100000000, Math.floor(n / 0x100000000));
    }
    return this.encoder.finish();
  }
}
