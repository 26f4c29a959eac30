// A stand-in exporter that writes seed-format frames by hand: for what the real exporter never
// sends (over-long labels, NaN observations, u64 totals, garbage) and for scripted connections
// (an app that restarts on the same address, a peer that briefly held the port).
import { createServer, type Server, type Socket } from 'node:net';

/** What a metric frame does. */
export type Op = { counter: bigint } | { set: number } | { inc: number } | { dec: number } | { observe: number };

function varint(n: bigint | number): number[] {
  let v = BigInt(n);
  const out: number[] = [];
  for (; v >= 0x80n; v >>= 7n) out.push(Number(v & 0x7fn) | 0x80);
  out.push(Number(v));
  return out;
}

/** A length-delimited field (wire type 2). */
function bytesField(no: number, body: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from([...varint((no << 3) | 2), ...varint(body.length)]), body]);
}

function doubleField(no: number, v: number): Buffer {
  const b = Buffer.alloc(9);
  b[0] = (no << 3) | 1;
  b.writeDoubleLE(v, 1);
  return b;
}

const text = (no: number, s: string) => bytesField(no, Buffer.from(s));

/** A frame: the Event's length prefix and body. */
function framed(event: Buffer): Buffer {
  return Buffer.concat([Buffer.from(varint(event.length)), event]);
}

function value(op: Op): Buffer {
  if ('counter' in op) return bytesField(4, op.counter === 0n ? Buffer.alloc(0) : Buffer.from([0x08, ...varint(op.counter)]));
  if ('observe' in op) return bytesField(6, doubleField(1, op.observe));
  const [no, v] = 'set' in op ? [1, op.set] : 'inc' in op ? [2, op.inc] : [3, op.dec];
  return bytesField(5, doubleField(no, v));
}

/** A metric frame of `name` + `labels` doing `op` (no timestamp). */
export function metric(name: string, labels: Record<string, string>, op: Op): Buffer {
  const entries = Object.entries(labels).map(([k, v]) => bytesField(3, Buffer.concat([text(1, k), text(2, v)])));
  return framed(bytesField(2, Buffer.concat([text(1, name), ...entries, value(op)])));
}

/** A metadata frame. */
export function metadata(name: string, kind: 'counter' | 'gauge' | 'histogram', unit?: string, description?: string): Buffer {
  const type = { counter: 0, gauge: 1, histogram: 2 }[kind];
  const parts = [text(1, name), Buffer.from([0x10, type])];
  if (unit !== undefined) parts.push(text(3, unit));
  if (description !== undefined) parts.push(text(4, description));
  return framed(bytesField(1, Buffer.concat(parts)));
}

/** A listening stand-in: `onConnection` is told each socket and its number (from 1). */
export interface RawExporter {
  /** `127.0.0.1:port` */
  readonly address: string;
  /** Connections accepted so far. */
  readonly connections: number;
  /** Ends every open connection (the peer sees a close), keeps listening. */
  cut(): void;
  close(): Promise<void>;
}

export async function rawExporter(onConnection: (socket: Socket, n: number) => void): Promise<RawExporter> {
  const open = new Set<Socket>();
  let connections = 0;
  const server: Server = createServer((s) => {
    open.add(s);
    s.on('error', () => {});
    s.on('close', () => open.delete(s));
    onConnection(s, ++connections);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    address: `127.0.0.1:${(server.address() as { port: number }).port}`,
    get connections() {
      return connections;
    },
    cut() {
      for (const s of open) s.destroy();
    },
    close() {
      for (const s of open) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}
