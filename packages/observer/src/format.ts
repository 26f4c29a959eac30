// Values shown with their unit, scaled the way a person reads them.

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
const BYTES_PER: Record<string, number> = { bytes: 1, kibibytes: 2 ** 10, mebibytes: 2 ** 20, gigibytes: 2 ** 30, tebibytes: 2 ** 40 };
const SECONDS_PER: Record<string, number> = { seconds: 1, milliseconds: 1e-3, microseconds: 1e-6, nanoseconds: 1e-9 };
const BITS_PER: Record<string, number> = {
  bits_per_second: 1,
  kilobits_per_second: 1e3,
  megabits_per_second: 1e6,
  gigabits_per_second: 1e9,
  terabits_per_second: 1e12,
};

function plain(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  v = Number(v.toPrecision(12)); // unit conversions leave float noise: 42e-9 * 1e9 = 42.00000000000001
  if (Number.isInteger(v)) return String(v);
  const a = Math.abs(v);
  return a >= 100 ? v.toFixed(1) : a >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

function bytes(n: number): string {
  let i = 0;
  while (Math.abs(n) >= 1024 && i < BYTE_UNITS.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i === 0 ? plain(n) : n.toFixed(2)} ${BYTE_UNITS[i]}`;
}

function duration(s: number): string {
  const a = Math.abs(s);
  if (a === 0) return '0 s';
  if (a >= 1) return `${plain(s)} s`;
  if (a >= 1e-3) return `${plain(s * 1e3)} ms`;
  if (a >= 1e-6) return `${plain(s * 1e6)} µs`;
  return `${plain(s * 1e9)} ns`;
}

function bitrate(bps: number): string {
  const steps: [number, string][] = [[1e12, 'Tbit/s'], [1e9, 'Gbit/s'], [1e6, 'Mbit/s'], [1e3, 'kbit/s']];
  for (const [f, u] of steps) if (Math.abs(bps) >= f) return `${plain(bps / f)} ${u}`;
  return `${plain(bps)} bit/s`;
}

/** `v` in `unit` (one of the metrics crate's unit strings, or none) as display text. */
export function formatValue(v: number, unit: string | undefined): string {
  if (unit === undefined || unit === 'count') return plain(v);
  if (unit in BYTES_PER) return bytes(v * BYTES_PER[unit]!);
  if (unit in SECONDS_PER) return duration(v * SECONDS_PER[unit]!);
  if (unit in BITS_PER) return bitrate(v * BITS_PER[unit]!);
  if (unit === 'percent') return `${plain(v)}%`;
  if (unit === 'count_per_second') return `${plain(v)}/s`;
  return `${plain(v)} ${unit}`;
}

/**
 * `s` with every control character (C0, DEL, C1) shown as an escape such as `\x1b`: what an
 * exporter sends (names, labels, units, descriptions) is shown on the user's terminal, and must
 * never be able to drive it (set the window title, write the clipboard, move the cursor).
 */
export function visible(s: string): string {
  return s.replace(/[\x00-\x1f\x7f-\x9f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/** A count with its thousands apart: `16 384`. */
export function grouped(n: number): string {
  return Math.round(n).toString().replace(/\B(?=(\d{3})+$)/g, ' ');
}

/** A ring fuller than this share of `bufferSize` is highlighted: the buffer is near its limit. */
export const NEAR_FULL = 0.75;
