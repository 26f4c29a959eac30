/**
 * The protobuf wire encoding of the few messages the worker builds outside its record encoder:
 * metadata frames and the name and label fields of a key, made once per name or key. Written
 * by hand because protobuf-es's runtime and the generated schema cost every exporter about
 * 4 MB of resident memory for them; `test/encoder.test.ts` checks these bytes against
 * protobuf-es's.
 */

const EMPTY = Buffer.alloc(0);

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}

/** A length-delimited field: its tag, the payload's length, the payload. */
export function delimitedField(field: number, payload: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([...varint((field << 3) | 2), ...varint(payload.length)]), payload]);
}

/** A string field (UTF-8, as protobuf-es writes it: a lone surrogate becomes U+FFFD). */
export function stringField(field: number, value: string): Buffer {
  return delimitedField(field, Buffer.from(value, 'utf8'));
}

/** A varint field. */
export function varintField(field: number, value: number): Buffer {
  return Buffer.from([...varint(field << 3), ...varint(value)]);
}

/** A message with its length before it: one frame of the stream. */
export function sizeDelimited(message: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(varint(message.length)), message]);
}

/** Proto3 leaves a field at its default value out (oneof members excepted). */
export function unlessDefault(field: Buffer, isDefault: boolean): Buffer {
  return isDefault ? EMPTY : field;
}
