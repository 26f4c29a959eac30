import type { Protocol } from '../../shared/messages.js';
import { BUFFER_SIZE_METRIC, QUEUE_PEAK_METRIC, RING_PEAK_METRIC, threadLabel } from '../../shared/protocol.js';
import { Chunk } from '../chunk.js';
import { FrameEncoder, GaugeOp } from '../encoder.js';
import { KeyTable, type KeyEntry } from '../keys.js';
import { encodeMetadata } from '../metadata.js';

/** One ring's peak fill over a report window (see `RingReader.takePeak`). */
export interface RingPeak {
  /** The producing thread's `worker_threads` id (0: the main thread). */
  readonly thread: number;
  readonly peak: number;
}

/**
 * Encodes the in-band fill levels: `metrics_exporter_tcp_ring_peak{thread}`,
 * `metrics_exporter_tcp_client_queue_peak` and `metrics_exporter_tcp_buffer_size`, ordinary
 * gauges that any client of the wire format shows. Their metadata, and the buffer size, go to a
 * client just before its first fill report.
 */
export class FillReport {
  private readonly encoder: FrameEncoder;
  private readonly table = new KeyTable();
  /** Ring peak keys by thread id (of the threads last reported with records in their ring). */
  private readonly rings = new Map<number, KeyEntry>();
  private readonly queue: KeyEntry;
  private readonly size: KeyEntry;
  /** The metadata frames, as one chunk. */
  readonly metadata: Chunk;

  constructor(
    protocol: Protocol,
    /** The exporter's `bufferSize`: records per ring, and frames per client queue. */
    readonly bufferSize: number,
  ) {
    this.encoder = new FrameEncoder(protocol);
    this.queue = this.table.entry(`\0fill:queue`, QUEUE_PEAK_METRIC, []);
    this.size = this.table.entry(`\0fill:size`, BUFFER_SIZE_METRIC, []);
    this.metadata = Chunk.of(
      encodeMetadata(RING_PEAK_METRIC, 'gauge', 'count', 'Most records a thread held in its ring at once since the previous report'),
      encodeMetadata(QUEUE_PEAK_METRIC, 'gauge', 'count', "Most frames this client's queue held at once since the previous report"),
      encodeMetadata(BUFFER_SIZE_METRIC, 'gauge', 'count', 'The exporter\'s bufferSize: records per ring, frames per client queue'),
    );
  }

  /** Starts a report stamped `nowMs`; `first`: the client's first, which carries the buffer size. */
  begin(nowMs: number, first: boolean): void {
    this.encoder.begin(nowMs);
    if (first) this.encoder.gauge(this.size, GaugeOp.Set, this.bufferSize);
  }

  /**
   * A thread's ring peak. The key of a thread whose ring is reported empty is let go (made again
   * if it fills): a pool that replaces its threads makes new thread ids for ever.
   */
  ring(thread: number, peak: number): void {
    let key = this.rings.get(thread);
    if (key === undefined) {
      key = this.table.entry(`\0fill:ring:${thread}`, RING_PEAK_METRIC, [['thread', threadLabel(thread)]]);
      this.rings.set(thread, key);
    }
    this.encoder.gauge(key, GaugeOp.Set, peak);
    if (peak !== 0) return;
    this.rings.delete(thread);
    this.table.release(key);
  }

  queuePeak(peak: number): void {
    this.encoder.gauge(this.queue, GaugeOp.Set, peak);
  }

  /** The frames since {@link begin}, or null if none. */
  finish(): Chunk | null {
    return this.encoder.finish();
  }
}
