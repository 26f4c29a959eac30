// Basic auth for /metrics (a web config's basic_auth_users): bcrypt on a thread of its own,
// successful checks cached, and bounded: a flood of wrong passwords costs one core at most,
// waits in a short queue (two per client address), and never delays a scraper whose password
// was checked already.
import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';

/** A check for the bcrypt thread: `hash` undefined for an unknown user. */
export interface BcryptRequest {
  readonly id: number;
  readonly password: string;
  readonly hash: string | undefined;
}
export interface BcryptReply {
  readonly id: number;
  readonly ok: boolean;
}

/** `ok`: serve; `denied`: 401; `busy`: too many checks waiting (429, try again). */
export type AuthResult = 'ok' | 'denied' | 'busy';

/** Successful checks remembered (as exporter-toolkit does), the oldest forgotten first. */
const CACHED = 100;
/** Checks waiting for the bcrypt thread at most, over all clients, and per client address. */
const PENDING = 16;
const PENDING_PER_PEER = 2;

/** The user and password of an `Authorization: Basic …` header; undefined when it is not one. */
function credentials(header: string | undefined): [user: string, password: string] | undefined {
  const m = header === undefined ? null : /^Basic +([A-Za-z0-9+/]+=*) *$/i.exec(header);
  if (m === null) return undefined;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon < 0 ? undefined : [text.slice(0, colon), text.slice(colon + 1)];
}

export class BasicAuth {
  /** SHA-256 of user and password → the hash they matched (so a changed hash is checked again). */
  private readonly cache = new Map<string, string>();
  private worker: Worker | undefined;
  private readonly waiting = new Map<number, { peer: string; resolve: (r: AuthResult) => void }>();
  private readonly perPeer = new Map<string, number>();
  private nextId = 0;
  private readonly cost: number;

  /** @param users user → bcrypt hash. */
  constructor(private readonly users: ReadonlyMap<string, string>) {
    this.cost = Math.max(4, ...[...users.values()].map((h) => Number(h.split('$')[2])));
  }

  /**
   * Checks an `Authorization` header from `peer` (the client's address): at once when there are
   * no credentials or they were checked before, else on the bcrypt thread.
   */
  check(authorization: string | undefined, peer: string): AuthResult | Promise<AuthResult> {
    const c = credentials(authorization);
    if (c === undefined) return 'denied';
    const [user, password] = c;
    const hash = this.users.get(user);
    const key = createHash('sha256').update(user).update('\0').update(password).digest('base64');
    if (hash !== undefined && this.cache.get(key) === hash) return 'ok';
    const mine = this.perPeer.get(peer) ?? 0;
    if (this.waiting.size >= PENDING || mine >= PENDING_PER_PEER) return 'busy';
    this.perPeer.set(peer, mine + 1);
    const id = this.nextId++;
    return new Promise<AuthResult>((resolve) => {
      this.waiting.set(id, { peer, resolve });
      this.thread().postMessage({ id, password, hash } satisfies BcryptRequest);
    }).then((r) => {
      if (r === 'ok') {
        this.cache.delete(key);
        this.cache.set(key, hash!);
        if (this.cache.size > CACHED) this.cache.delete(this.cache.keys().next().value!);
      }
      return r;
    });
  }

  /** Stops the bcrypt thread; checks still waiting are answered `busy`. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    await w?.terminate();
    this.settleAll('busy');
  }

  private settle(id: number, r: AuthResult): void {
    const w = this.waiting.get(id);
    if (w === undefined) return;
    this.waiting.delete(id);
    const n = this.perPeer.get(w.peer)! - 1;
    if (n === 0) this.perPeer.delete(w.peer);
    else this.perPeer.set(w.peer, n);
    w.resolve(r);
  }

  private settleAll(r: AuthResult): void {
    for (const id of [...this.waiting.keys()]) this.settle(id, r);
  }

  /** The bcrypt thread, started at the first check (again if it died); it never keeps the process alive. */
  private thread(): Worker {
    if (this.worker !== undefined) return this.worker;
    const w = new Worker(new URL('./bcrypt-thread.js', import.meta.url), { workerData: { cost: this.cost } });
    w.unref();
    w.on('message', (m: BcryptReply) => this.settle(m.id, m.ok ? 'ok' : 'denied'));
    w.on('error', () => {}); // 'exit' follows
    w.on('exit', () => {
      if (this.worker === w) this.worker = undefined;
      this.settleAll('busy');
    });
    this.worker = w;
    return w;
  }
}
