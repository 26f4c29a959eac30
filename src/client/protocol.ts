// Which wire format a client reads: names (checked in shared/protocol.ts) and detection.
import { checkProtocol, PROTOCOLS, type Protocol } from '../shared/protocol.js';

/**
 * The wire format to read: `'seed'` (the Rust crate of 2021, what this package's exporter
 * sends by default) or `'observer-0.11'` (today's Rust exporter and `metrics-observer`).
 */
export type ClientProtocol = Protocol;

/** The wire formats a client reads, and `'auto'`: tell them apart by the first metric frame. */
export const CLIENT_PROTOCOLS: readonly (ClientProtocol | 'auto')[] = ['auto', ...PROTOCOLS];

/**
 * `value` as a protocol name a client takes.
 * @throws TypeError unless it is `'auto'`, `'seed'` or `'observer-0.11'`.
 */
export function parseProtocol(value: unknown): ClientProtocol | 'auto' {
  return checkProtocol(value, true);
}

/**
 * Which wire format a frame is in, from its first metric frame: the two formats differ in the
 * wire type of `Metric`'s value field (the seed's `counter`/`gauge`/`histogram` (4–6) are
 * messages; observer-0.11's `operation` (4–9) are varints or doubles). Metadata frames are the
 * same in both: `undefined`.
 */
export function detectProtocol(frame: Uint8Array): ClientProtocol | undefined {
  if (frame[0] !== 0x12) return undefined; // not Event.metric
  let pos = 1;
  const varint = (): number => {
    let v = 0;
    for (let shift = 0; pos < frame.length && shift < 35; shift += 7) {
      const b = frame[pos++]!;
      v += (b & 0x7f) * 2 ** shift;
      if (b < 0x80) return v;
    }
    return -1;
  };
  const end = varint() + pos;
  while (pos < end && pos < frame.length) {
    const tag = varint();
    const field = tag >>> 3;
    const wireType = tag & 7;
    if (field >= 4) {
      if (field <= 6 && wireType === 2) return 'seed';
      if (field <= 9 && (wireType === 0 || wireType === 1)) return 'observer-0.11';
      return undefined;
    }
    if (wireType !== 2) return undefined; // name, timestamp and labels are length-delimited
    const length = varint(); // (not `pos += varint()`: that would add to pos as it was before the read)
    pos += length;
  }
  return undefined;
}
