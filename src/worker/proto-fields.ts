/**
 * The protobuf wire encoding of the few messages the worker builds outside its record encoder:
 * metadata frames and the name and label fields of a key, made once per name or key. Written
 * by hand because protobuf-es's runtime and the generated schema cost every exporter about
 * 4 MB of resident memory for them; `test/encoder.test.ts` checks these bytes against
 * protobuf-es's. Varints are the record encoder's.
 */
import { putVarint, varintSize } from './encoder.js';

function varint(v: number): Buffer {
  const out = Buffer.allocUnsafe(varintSize(v));
  putVarint(out, 0, v);
  return out;
}

/** A length-delimited field: its tag, the payload's length, the payload. */
export function delimitedField(field: number, payload: Uint8Array): Buffer {
  return Buffer.concat([varint((field << 3) | 2), varint(payload.length), payload]);
}

/** A string field (UTF-8, as protobuf-es writes it: a lone surrogate becomes U+FFFD). */
export function stringField(field: number, value: string): Buffer {
  return delimitedField(field, Buffer.from(value, 'utf8'));
}

/** A varint field. */
export function varintField(field: number, value: number): Buffer {
  return Buffer.concat([varint(field << 3), varint(value)]);
}

/** A message with its length before it: one frame of the stream. */
export function sizeDelimited(message: Uint8Array): Buffer {
  return Buffer.concat([varint(message.length), message]);
}
