import { createRequire } from 'node:module';
import type { ServerTls } from '../shared/messages.js';
import { certificate, certificates, privateKey, usable, type Pem } from '../shared/pem.js';

export type { Pem };

/**
 * TLS for the exporter's stream (see `TcpBuilder.tls()`): PEM, as `node:tls` takes it. With `ca`,
 * only clients presenting a certificate signed by it are served (mutual authentication).
 */
export interface TlsOptions {
  /** The exporter's private key. */
  key: Pem;
  /** The exporter's certificate (or chain, leaf first), which clients verify. */
  cert: Pem;
  /** Certificate authorities that client certificates must be signed by. */
  ca?: Pem | readonly Pem[];
  /** Whether clients must present a certificate signed by `ca`. Default: `true` when `ca` is given; `true` without `ca` is a `TypeError`. */
  requestCert?: boolean;
  /**
   * How long a connection has to complete the TLS handshake, in ms; then it is closed and counted
   * in `rejectedClients`. Until it completes it is not a client: it holds no client slot. Default 5000.
   */
  handshakeTimeoutMs?: number;
}

const DEFAULT_HANDSHAKE_TIMEOUT_MS = 5000;
/** node:tls, loaded by the first `tls()`: most apps never use it, and it costs 3 MB. */
const load = createRequire(import.meta.url);

/**
 * Checks the options of `TcpBuilder.tls()` as far as can be done before listening: each PEM
 * parses as what it should be, and the key matches the certificate.
 * @throws TypeError naming the option at fault
 */
export function checkTls(options: unknown): ServerTls {
  if (typeof options !== 'object' || options === null) throw new TypeError('tls() takes { key, cert, ca?, requestCert?, handshakeTimeoutMs? }');
  const o = options as TlsOptions;
  const key = privateKey('tls.key', o.key);
  const cert = certificate('tls.cert', o.cert);
  const ca = o.ca === undefined ? undefined : certificates('tls.ca', o.ca);
  if (o.requestCert !== undefined && typeof o.requestCert !== 'boolean') throw new TypeError(`tls.requestCert must be a boolean, got ${String(o.requestCert)}`);
  const requestCert = o.requestCert ?? ca !== undefined;
  if (requestCert && ca === undefined) throw new TypeError('tls.requestCert needs tls.ca: the authorities client certificates must be signed by');
  const timeout = o.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  if (typeof timeout !== 'number' || !Number.isFinite(timeout) || timeout < 1 || timeout > 600_000) {
    throw new TypeError(`tls.handshakeTimeoutMs must be a number from 1 to 600000, got ${String(timeout)}`);
  }
  const { createSecureContext } = load('node:tls') as typeof import('node:tls');
  usable('tls.key', () => createSecureContext({ key, cert })); // e.g. "key values mismatch"
  return { key, cert, ca, requestCert, handshakeTimeoutMs: timeout };
}
