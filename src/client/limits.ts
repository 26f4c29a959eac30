// How much of what a sender says a client keeps: the exporter's own limits on what one key and
// one description may be, so that a hostile or broken sender cannot make a client hold more.
import type { MetadataEvent } from './events.js';

/**
 * Longest metric name, label name and label value, in characters (UTF-16 code units): the
 * exporter's own limits (it refuses longer ones when a key is created).
 */
export const MAX_NAME_LENGTH = 1024;
/** Most labels on one key: the exporter's own limit. */
export const MAX_LABELS = 64;
/** Longest description (and unit), in characters: the exporter's own limit. */
export const MAX_DESCRIPTION_LENGTH = 4096;
/** The default byte budget of the keys a client holds per connection: 16 MiB. */
export const DEFAULT_MAX_KEY_BYTES = 16 * 1024 * 1024;

/** The most UTF-8 bytes a string of `length` characters (UTF-16 code units) takes: 3 per unit (4 per surrogate pair). */
export function maxUtf8Bytes(length: number): number {
  return 3 * length;
}

/**
 * The longest a frame can be while everything in it is within the limits: a name, 64 labels of
 * two strings (each with a few bytes of protobuf around it), a value and a timestamp; a
 * metadata frame is far shorter. Anything longer is too large without being decoded.
 */
export const MAX_KEY_FRAME_BYTES = maxUtf8Bytes(MAX_NAME_LENGTH) + 8 + MAX_LABELS * (2 * maxUtf8Bytes(MAX_NAME_LENGTH) + 16) + 64;

/** Whether a key is over the limits: a name or a label over 1024 characters, or more than 64 labels. */
export function keyTooLarge(name: string, labels: Readonly<Record<string, string>>): boolean {
  if (name.length > MAX_NAME_LENGTH) return true;
  let n = 0;
  for (const k in labels) {
    if (++n > MAX_LABELS || k.length > MAX_NAME_LENGTH || labels[k]!.length > MAX_NAME_LENGTH) return true;
  }
  return false;
}

/** Whether metadata is over the limits: a name over 1024 characters, a unit or description over 4096. */
export function metadataTooLarge(m: Pick<MetadataEvent, 'name' | 'unit' | 'description'>): boolean {
  return m.name.length > MAX_NAME_LENGTH || (m.unit?.length ?? 0) > MAX_DESCRIPTION_LENGTH || (m.description?.length ?? 0) > MAX_DESCRIPTION_LENGTH;
}

/** The UTF-8 bytes of a key's text: its name and every label name and value. */
export function keyBytes(name: string, labels: Readonly<Record<string, string>>): number {
  let n = Buffer.byteLength(name);
  for (const k in labels) n += Buffer.byteLength(k) + Buffer.byteLength(labels[k]!);
  return n;
}

/** The UTF-8 bytes of metadata's text: its name, unit and description. */
export function metadataBytes(m: Pick<MetadataEvent, 'name' | 'unit' | 'description'>): number {
  return Buffer.byteLength(m.name) + Buffer.byteLength(m.unit ?? '') + Buffer.byteLength(m.description ?? '');
}
