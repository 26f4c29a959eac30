// What the fuzz tests feed a client: streams of length-delimited frames of either protocol,
// valid or broken on purpose, from a seeded generator so that any case can be replayed.
import { create, toBinary } from '@bufbuild/protobuf';
import * as seedPb from '../src/gen/event_pb.js';
import * as observerPb from '../src/gen/observer_event_pb.js';

export type WireProtocol = 'seed' | 'observer-0.11';
export type MalformedCode = 'FRAME_TOO_LARGE' | 'BAD_LENGTH' | 'DECODE';

/** mulberry32: a small, fast, seedable generator; plenty for test inputs. */
export class Rng {
  private state: number;
  constructor(readonly seed: number) {
    this.state = seed | 0;
  }
  /** A float in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) | 0;
    let t = Math.imul(this.state ^ (this.state >>> 15), 1 | this.state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  bytes(n: number): Uint8Array {
    return Uint8Array.from({ length: n }, () => this.int(256));
  }
}

/** The seed a run starts from: `FUZZ_SEED` if set (to replay a failure), else a fixed one. */
export function baseSeed(): number {
  const s = process.env.FUZZ_SEED;
  return s === undefined ? 0x5eed : Number(s);
}

/** Well-formed text: ASCII, accents, CJK, an emoji (a surrogate pair), sometimes empty. */
function text(r: Rng, max = 12): string {
  const alphabet = ['a', 'z', '_', '0', ' ', 'é', 'ž', '字', '😀', '\u0000', '"', '\\'];
  return Array.from({ length: r.int(max + 1) }, () => r.pick(alphabet)).join('');
}

function labels(r: Rng): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = r.int(4); i > 0; i--) out[text(r, 6)] = text(r, 6);
  return out;
}

function double(r: Rng): number {
  return r.pick([0, -0, 1.5, -2, 1e300, Number.POSITIVE_INFINITY, Number.NaN, r.next() * 1000]);
}

function metadata(r: Rng, name = text(r)): seedPb.Metadata {
  return create(seedPb.MetadataSchema, {
    name,
    metricType: r.int(3),
    ...(r.chance(0.5) ? { unit: { case: 'unitValue' as const, value: text(r) } } : {}),
    ...(r.chance(0.5) ? { description: { case: 'descriptionValue' as const, value: text(r, 40) } } : {}),
  });
}

/** One valid Event of `protocol`, encoded without its length prefix. `name` defaults to random text. */
export function validEvent(r: Rng, protocol: WireProtocol, name?: string): Uint8Array {
  const common = { name: name ?? text(r), labels: labels(r), ...(r.chance(0.7) ? { timestamp: { seconds: BigInt(r.int(2 ** 31)), nanos: r.int(1e9) } } : {}) };
  const counter = r.chance(0.2) ? 2n ** 64n - 1n : BigInt(r.int(1000));
  if (protocol === 'seed') {
    if (r.chance(0.25)) return toBinary(seedPb.EventSchema, create(seedPb.EventSchema, { event: { case: 'metadata', value: metadata(r, name) } }));
    const value = r.pick([
      { case: 'counter' as const, value: { value: counter } },
      { case: 'gauge' as const, value: { value: { case: r.pick(['absolute', 'increment', 'decrement'] as const), value: double(r) } } },
      { case: 'histogram' as const, value: { value: double(r) } },
    ]);
    return toBinary(seedPb.EventSchema, create(seedPb.EventSchema, { event: { case: 'metric', value: { ...common, value } } }));
  }
  if (r.chance(0.25)) return toBinary(observerPb.EventSchema, create(observerPb.EventSchema, { event: { case: 'metadata', value: metadata(r, name) } }));
  const operation = r.chance(0.3)
    ? { case: r.pick(['incrementCounter', 'setCounter'] as const), value: counter }
    : { case: r.pick(['setGauge', 'incrementGauge', 'decrementGauge', 'recordHistogram'] as const), value: double(r) };
  return toBinary(observerPb.EventSchema, create(observerPb.EventSchema, { event: { case: 'metric', value: { ...common, operation } } }));
}

function varint(n: bigint): number[] {
  const out: number[] = [];
  for (; n >= 0x80n; n >>= 7n) out.push(Number(n & 0x7fn) | 0x80);
  out.push(Number(n));
  return out;
}

/** `body` with its varint length prefix. */
export function framed(body: Uint8Array): Uint8Array {
  return Uint8Array.from([...varint(BigInt(body.length)), ...body]);
}

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** Byte sequences that are not UTF-8: a stray byte, a lone lead or continuation byte, a surrogate, beyond U+10FFFF, overlong. */
const NOT_UTF8 = [[0xff], [0xc3], [0x80], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0xc0, 0x80], [0xe2, 0x82]];
const MARK = '\u0007'.repeat(8);

/** A valid frame whose name has a sequence that is not UTF-8 where the marker was. */
function invalidUtf8(r: Rng, protocol: WireProtocol): Uint8Array {
  const body = validEvent(r, protocol, `${text(r, 3)}${MARK}${text(r, 3)}`);
  const at = Buffer.from(body).indexOf(Buffer.from(MARK));
  const bad = r.pick(NOT_UTF8);
  body.set([...bad, ...Array<number>(MARK.length - bad.length).fill(0x41)], at);
  return body;
}

/** A broken frame, and the code a client must stop with when it reads it. */
function malformed(r: Rng, protocol: WireProtocol, maxFrameBytes: number): { kind: string; bytes: Uint8Array; code: MalformedCode } {
  switch (r.int(7)) {
    case 0: {
      const length = BigInt(maxFrameBytes + 1) + BigInt(Math.floor(r.next() * 2 ** 53)) * BigInt(r.pick([0, 1, 1024]));
      return { kind: 'huge length', bytes: Uint8Array.from([...varint(length), ...r.bytes(r.int(8))]), code: 'FRAME_TOO_LARGE' };
    }
    case 1: // 11 to 20 bytes of prefix that say (almost) nothing but "more follows"
      return { kind: 'overlong length', bytes: Uint8Array.from([0x80 | r.int(128), ...Array<number>(10 + r.int(10)).fill(0x80)]), code: 'BAD_LENGTH' };
    case 2:
      return { kind: 'invalid UTF-8', bytes: framed(invalidUtf8(r, protocol)), code: 'DECODE' };
    case 3: // Event.metadata or Event.metric sent as a varint, not a message
      return { kind: 'wrong wire type', bytes: framed(Uint8Array.from([r.pick([0x08, 0x10]), 1 + r.int(127)])), code: 'DECODE' };
    case 4: // Metadata.metric_type beyond HISTOGRAM
      return { kind: 'unknown metric type', bytes: framed(Uint8Array.from([0x0a, 0x02, 0x10, 3 + r.int(100)])), code: 'DECODE' };
    case 5: // a field length past the end of the frame
      return { kind: 'truncated field', bytes: framed(Uint8Array.from([0x12, 0x05 + r.int(100), 0x0a, 0x01, 0x41])), code: 'DECODE' };
    default:
      return { kind: 'empty frame', bytes: framed(new Uint8Array(0)), code: 'DECODE' };
  }
}

/** A few changes of the kinds a broken sender or a bad link makes. */
function mutate(r: Rng, input: Uint8Array): Uint8Array {
  let b = Array.from(input);
  for (let n = 1 + r.int(4); n > 0 && b.length > 0; n--) {
    const at = r.int(b.length);
    switch (r.int(6)) {
      case 0:
        b[at] = b[at]! ^ (1 << r.int(8)); // a flipped bit
        break;
      case 1:
        b[at] = b[at]! ^ r.pick([1, 2, 3, 5]); // another wire type, if it was a tag
        break;
      case 2:
        b.splice(at, 0, ...r.bytes(1 + r.int(8)));
        break;
      case 3:
        b.splice(at, 1 + r.int(16));
        break;
      case 4:
        b.splice(at, 0, ...b.slice(at, at + 1 + r.int(32)));
        break;
      default:
        b = b.slice(0, at); // truncated
    }
  }
  return Uint8Array.from(b);
}

/** One input for a client. */
export interface FuzzCase {
  readonly seed: number;
  readonly protocol: WireProtocol;
  readonly kind: string;
  readonly bytes: Uint8Array;
  /**
   * Set when the case is broken on purpose: the client must deliver the `validFrames` events
   * before it, then stop with this code and close the connection (which the sender keeps open).
   * Otherwise any end is fine as long as it is clean or coded; the sender closes after writing.
   */
  readonly expect?: MalformedCode;
  readonly validFrames: number;
}

/** The case for `seed`: valid frames, then (half of the time) something malformed; or a mutated or random stream. */
export function fuzzCase(seed: number, maxFrameBytes: number): FuzzCase {
  const r = new Rng(seed);
  const protocol = r.pick(['seed', 'observer-0.11'] as const);
  const validFrames = r.int(6);
  const valid = Array.from({ length: validFrames }, () => framed(validEvent(r, protocol)));
  const shape = r.int(4);
  if (shape <= 1) {
    const bad = malformed(r, protocol, maxFrameBytes);
    return { seed, protocol, kind: bad.kind, bytes: concat([...valid, bad.bytes]), expect: bad.code, validFrames };
  }
  if (shape === 2) return { seed, protocol, kind: 'mutated', bytes: mutate(r, concat(valid)), validFrames: 0 };
  return { seed, protocol, kind: 'random bytes', bytes: r.bytes(r.int(200)), validFrames: 0 };
}

/** `bytes` cut into pieces of random sizes (1 byte up to all of it). */
export function chunks(r: Rng, bytes: Uint8Array): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let pos = 0; pos < bytes.length; ) {
    const n = 1 + r.int(r.chance(0.5) ? 8 : bytes.length);
    out.push(bytes.subarray(pos, pos + n));
    pos += n;
  }
  return out;
}
