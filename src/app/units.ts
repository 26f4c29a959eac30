/**
 * Units a metric can be registered with: the metrics crate's `Unit::as_str()` strings, which is
 * what the seed puts in `Metadata.unit_value`.
 */
export const UNITS = [
  'count',
  'percent',
  'seconds',
  'milliseconds',
  'microseconds',
  'nanoseconds',
  'tebibytes',
  'gigibytes',
  'mebibytes',
  'kibibytes',
  'bytes',
  'terabits_per_second',
  'gigabits_per_second',
  'megabits_per_second',
  'kilobits_per_second',
  'bits_per_second',
  'count_per_second',
] as const;

export type Unit = (typeof UNITS)[number];

const known = new Set<string>(UNITS);

/** Longest description accepted, in UTF-16 code units. */
export const MAX_DESCRIPTION_LENGTH = 4096;

/** @throws TypeError for anything but `undefined` or a known unit string. */
export function checkUnit(unit: unknown): Unit | undefined {
  if (unit === undefined) return undefined;
  if (typeof unit !== 'string' || !known.has(unit)) {
    throw new TypeError(`unit must be one of ${UNITS.join(', ')}; got ${JSON.stringify(unit)}`);
  }
  return unit as Unit;
}

/** @throws TypeError / RangeError for a description that is not a string or is too long. */
export function checkDescription(description: unknown): string | undefined {
  if (description === undefined) return undefined;
  if (typeof description !== 'string') throw new TypeError('description must be a string');
  if (description.length > MAX_DESCRIPTION_LENGTH) {
    throw new RangeError(`description is longer than ${MAX_DESCRIPTION_LENGTH} characters`);
  }
  return description;
}
