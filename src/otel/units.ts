import type { Unit } from '../app/units.js';

// OpenTelemetry units are UCUM strings; the wire carries the metrics crate's unit names. These
// are the UCUM units with a wire name. Any other unit (`m`, `Cel`, `J`, …) is left out of the
// metadata: the wire has no way to say it.
const UCUM: Readonly<Record<string, Unit>> = {
  s: 'seconds',
  ms: 'milliseconds',
  us: 'microseconds',
  ns: 'nanoseconds',
  By: 'bytes',
  KiBy: 'kibibytes',
  MiBy: 'mebibytes',
  GiBy: 'gigibytes',
  TiBy: 'tebibytes',
  '1': 'count',
  '%': 'percent',
  'bit/s': 'bits_per_second',
  'kbit/s': 'kilobits_per_second',
  'Mbit/s': 'megabits_per_second',
  'Gbit/s': 'gigabits_per_second',
  'Tbit/s': 'terabits_per_second',
  '1/s': 'count_per_second',
};

/** A UCUM annotation alone, such as `{request}`: a count of something. */
const ANNOTATION = /^\{[^{}]*\}$/;
/** An annotation per second, such as `{request}/s`. */
const ANNOTATION_RATE = /^\{[^{}]*\}\/s$/;

/**
 * The wire unit for an OpenTelemetry (UCUM) unit, or undefined when the wire has none (the
 * metadata then carries no unit).
 */
export function wireUnit(ucum: string | undefined): Unit | undefined {
  if (ucum === undefined || ucum === '') return undefined;
  if (Object.hasOwn(UCUM, ucum)) return UCUM[ucum];
  if (ANNOTATION.test(ucum)) return 'count';
  if (ANNOTATION_RATE.test(ucum)) return 'count_per_second';
  return undefined;
}
