import { chmodSync, lstatSync, unlinkSync, type Stats } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { createRequire } from 'node:module';
import type { BoundAddress, ListenAddress } from '../../shared/address.js';
import type { ServerTls } from '../../shared/messages.js';
import { Chunk } from '../chunk.js';
import type { MetadataStore } from '../metadata.js';
import type { Counters } from '../stats.js';
import { Client, type ClientContext } from './client.js';
import type { FillReport, RingPeak } from './fill-report.js';
import type { Loss, LossReport } from './loss-report.js';

export interface TransportOptions {
  /** Frames each client may have queued. */
  readonly bufferSize: number;
  readonly maxClients: number;
  readonly counters: Counters;
  readonly metadata: MetadataStore;
  /** Encodes the in-band drop counter; null when self metrics are off. */
  readonly report: LossReport | null;
  /** Encodes the in-band fill levels; null when self metrics are off. */
  readonly fill: FillReport | null;
  /** The time, in ms since the epoch. */
  readonly now: () => number;
  /** Frames a new client gets after the metadata (`replayOnConnect`'s totals), if any. */
  readonly state: () => Chunk | null;
  /** Called with the new client count whenever it changes. */
  readonly onClients: (n: number) => void;
  /** Reports a problem to the app as a process warning. */
  readonly warn: (message: string, code: string) => void;
  /** Serve over TLS with these settings. */
  readonly tls: ServerTls | undefined;
}

const NONE: readonly Client[] = [];
/**
 * With TLS, handshakes in progress per client slot, at most: past them, the oldest is given up
 * (a client's handshake takes milliseconds; a connection that has not finished its own in that
 * long is the likelier to be idle or hostile), so idle connections cannot lock clients out.
 */
const HANDSHAKES_PER_CLIENT_SLOT = 2;

/** The listener and the set of connected clients. */
export class Transport {
  /**
   * Connected clients. Replaced, never changed in place, when one comes or goes, so a loop over
   * it is never disturbed; loops are indexed (no iterator is allocated per round).
   */
  private clients: readonly Client[] = NONE;
  /** The clients of the current {@link cork}. */
  private corked: readonly Client[] = NONE;
  private readonly server: Server;
  private accepting = true;
  private readonly context: ClientContext;
  private reportTimer: NodeJS.Timeout | undefined;
  private reportAt = Number.POSITIVE_INFINITY;
  private readonly reportNow = (): void => {
    this.reportTimer = undefined;
    this.reportAt = Number.POSITIVE_INFINITY;
    const cs = this.clients;
    for (let i = 0; i < cs.length; i++) cs[i]!.report();
  };

  constructor(private readonly opts: TransportOptions) {
    this.server = opts.tls === undefined ? createServer((socket) => this.accept(socket)) : this.secureServer(opts.tls);
    this.context = {
      limit: opts.bufferSize,
      counters: opts.counters,
      report: opts.report,
      fill: opts.fill,
      now: opts.now,
      wakeAt: (at) => this.wakeAt(at),
      // Removal happens once per client, however many of 'error'/'close' fire: the count is exact.
      onGone: (c) => {
        if (!this.clients.includes(c)) return;
        this.clients = this.clients.filter((x) => x !== c);
        this.changed();
      },
    };
  }

  /**
   * Binds; rejects with the OS error. A unix socket gets mode 0600. A socket file of this user
   * that nobody listens on (left by a process that died without closing) is replaced; anything
   * else at the path is left as it is (EADDRINUSE, with a message that says what is there): a
   * live exporter's socket, another user's, a symbolic link, a regular file.
   */
  async listen(addr: ListenAddress): Promise<BoundAddress> {
    try {
      return await this.bind(addr);
    } catch (err) {
      if (!('path' in addr) || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      const why = await whyKept(addr.path);
      if (why !== undefined) throw Object.assign(new Error(`${addr.path} ${why}; it is left as it is`), { code: 'EADDRINUSE', syscall: 'listen' });
      unlinkSync(addr.path);
      return this.bind(addr);
    }
  }

  private bind(addr: ListenAddress): Promise<BoundAddress> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      const done = (): void => {
        this.server.off('error', reject);
        // Later server errors (e.g. EMFILE on accept) are reported; the server keeps listening.
        this.server.on('error', (err) => this.opts.warn(`metrics-exporter-tcp: ${err.message}`, 'MTCP_ACCEPT'));
        if ('path' in addr) {
          // Not through a link someone put in its place since: chmod follows links.
          if (!lstatSync(addr.path).isSocket()) return reject(new Error(`${addr.path} was replaced by something else as it was bound`));
          chmodSync(addr.path, 0o600);
          resolve({ path: addr.path });
        } else {
          const a = this.server.address();
          resolve({ host: addr.host, port: typeof a === 'object' && a !== null ? a.port : addr.port });
        }
      };
      if ('path' in addr) this.server.listen({ path: addr.path, exclusive: true }, done);
      else this.server.listen({ host: addr.host, port: addr.port, exclusive: true }, done);
    });
  }

  get clientCount(): number {
    return this.clients.length;
  }

  /** Queues a batch of metric frames for every client (each takes a use of it). */
  broadcast(chunk: Chunk): void {
    const cs = this.clients;
    for (let i = 0; i < cs.length; i++) cs[i]!.enqueue(chunk);
  }

  /** Sends one metadata frame to every client, never dropped for queue space. */
  broadcastMetadata(frame: Uint8Array): void {
    const cs = this.clients;
    if (cs.length === 0) return;
    const chunk = Chunk.of(frame);
    for (let i = 0; i < cs.length; i++) cs[i]!.sendDirect(chunk);
  }

  /**
   * The rings' peaks over a window: each client is told in its next report.
   * @returns whether a client's queue still holds frames, or held some not reported yet (its
   *   fill levels are still moving)
   */
  noteFill(peaks: readonly RingPeak[]): boolean {
    const cs = this.clients;
    let unsettled = false;
    for (let i = 0; i < cs.length; i++) {
      cs[i]!.noteFill(peaks);
      unsettled ||= cs[i]!.queueUnsettled;
    }
    return unsettled;
  }

  /** Whether clients are told fill levels (self metrics are on). */
  get reportsFill(): boolean {
    return this.opts.fill !== null;
  }

  /** Records every connected client did not get (ring full, invalid): each is told in-band. */
  lose(reason: Loss, n: number): void {
    const cs = this.clients;
    for (let i = 0; i < cs.length; i++) cs[i]!.noteLoss(reason, n);
  }

  /**
   * Holds every client's writes until {@link uncork}, so that a round goes out in one write per
   * client. The clients corked are the ones uncorked, even if the list changed in between.
   */
  cork(): void {
    const cs = (this.corked = this.clients);
    for (let i = 0; i < cs.length; i++) cs[i]!.cork();
  }

  uncork(): void {
    const cs = this.corked;
    this.corked = NONE;
    for (let i = 0; i < cs.length; i++) cs[i]!.uncork();
  }

  /** Calls every client's `report()` at `at` (one timer for all of them). */
  private wakeAt(at: number): void {
    if (at >= this.reportAt) return;
    clearTimeout(this.reportTimer);
    this.reportAt = at;
    this.reportTimer = setTimeout(this.reportNow, Math.max(0, at - this.opts.now()));
    this.reportTimer.unref();
  }

  /**
   * Stops accepting, gives clients until `deadline` (ms since the epoch) to receive what is
   * queued, counts what they did not get as dropped, and closes every socket and the listener.
   * `flushed` is called once everything is written to the kernel or counted (and the last loss
   * reports too, or the deadline has passed): a process may exit from then on.
   */
  /** New connections are refused from now on (counted in `rejectedClients`). */
  stopAccepting(): void {
    this.accepting = false;
  }

  async shutdown(deadline: number, flushed: () => void): Promise<void> {
    this.stopAccepting();
    // A capture's worker never listened: there is no server to close.
    const serverClosed = this.server.listening ? new Promise<void>((resolve) => this.server.close(() => resolve())) : Promise.resolve();
    while (this.clients.some((c) => !c.idle) && Date.now() < deadline) await sleep(2);
    const clients = this.clients;
    const closed = clients.map((c) => new Promise<void>((resolve) => c.socket.once('close', () => resolve())));
    // Out of time for the others: what they will not get is counted as dropped.
    for (const c of clients) {
      if (c.idle) c.end();
      else c.abandon();
    }
    while (clients.some((c) => c.socket.writableLength > 0) && Date.now() < deadline) await sleep(1);
    flushed();
    // Idle clients got their last loss report and a FIN; one that does not close its side in
    // time is closed for it.
    const all = Promise.all(closed);
    if (!(await settlesWithin(all, Math.max(50, deadline - Date.now())))) {
      for (const c of clients) c.abandon();
      await all;
    }
    clearTimeout(this.reportTimer);
    await serverClosed;
  }

  /**
   * A TLS listener. A connection becomes a client only once its handshake is done (with `ca`,
   * once its certificate is verified): until then it holds no client slot, and gets nothing. One
   * whose handshake fails or times out (plain TCP, no certificate, another authority's) is closed
   * and counted as rejected; so is the oldest handshake in progress when there are too many, and
   * a connection past the client slots.
   */
  private secureServer(t: ServerTls): Server {
    // node:tls is loaded by the exporters that serve TLS: it costs a worker 3 MB.
    const { createServer: createTlsServer } = createRequire(import.meta.url)('node:tls') as typeof import('node:tls');
    const server = createTlsServer(
      {
        key: t.key,
        cert: t.cert,
        ca: t.ca === undefined ? undefined : [...t.ca],
        requestCert: t.requestCert,
        rejectUnauthorized: t.requestCert,
        handshakeTimeout: t.handshakeTimeoutMs,
        minVersion: 'TLSv1.2',
      },
      (socket) => this.accept(socket),
    );
    // Raw connections whose handshake is not done, oldest first.
    const handshaking = new Set<Socket>();
    const most = this.opts.maxClients * HANDSHAKES_PER_CLIENT_SLOT;
    server.on('connection', (raw: Socket) => {
      handshaking.add(raw);
      raw.once('close', () => handshaking.delete(raw));
      if (handshaking.size <= most) return;
      const oldest = handshaking.values().next().value!;
      handshaking.delete(oldest);
      oldest.destroy(); // its handshake fails: counted below, as rejected
    });
    server.on('secureConnection', (socket: Socket) => handshaking.delete((socket as unknown as { _parent: Socket })._parent));
    server.on('tlsClientError', (_err, socket) => {
      socket.destroy();
      this.rejected();
    });
    return server;
  }

  private rejected(): void {
    this.opts.counters.rejectedClients++;
    this.opts.counters.changed();
  }

  private accept(socket: Socket): void {
    if (!this.accepting || this.clients.length >= this.opts.maxClients) {
      this.rejected();
      socket.on('error', () => {});
      socket.destroy();
      return;
    }
    // The app learns first that a client is connected, so that records made from now on go to
    // the rings; then the totals (replayOnConnect), before the client is added: they cover
    // every record it will not get live.
    this.opts.onClients(this.clients.length + 1);
    const state = this.opts.state();
    const client = new Client(socket, this.context);
    this.clients = [...this.clients, client];
    const replay = this.opts.metadata.replay();
    if (replay !== null) client.replay(replay);
    if (state !== null) client.sendState(state);
    this.changed();
  }

  private changed(): void {
    this.opts.counters.clients = this.clients.length;
    this.opts.counters.changed();
    this.opts.onClients(this.clients.length);
  }
}

/**
 * Why the file at `path` must not be replaced by the exporter's socket: undefined only for a
 * socket of this user that nobody answers on (or nothing at all, any more).
 */
async function whyKept(path: string): Promise<string | undefined> {
  let st: Stats;
  try {
    st = lstatSync(path);
  } catch {
    return undefined;
  }
  if (st.isSymbolicLink()) return 'is a symbolic link';
  if (!st.isSocket()) return 'exists and is not a socket';
  const uid = process.getuid?.();
  if (uid !== undefined && st.uid !== uid) return `is a socket of another user (uid ${st.uid})`;
  if (!(await isStaleSocket(path))) return 'is a socket another process listens on';
  return undefined;
}

/** Whether the socket file at `path` has no listener: a connection to it is refused. */
function isStaleSocket(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(false);
    });
    probe.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** True if `p` settles within `ms`; the timer is cleared either way, so it holds nothing open. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(resolve, ms, false)));
  try {
    return await Promise.race([p.then(() => true as const), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
