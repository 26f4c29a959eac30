// The relay's connections to exporters over TLS (--tls-ca, --tls-cert, --tls-key): the
// handshake has a deadline, and a failed one says why in the relay's own terms (its flags).
import { isIP } from 'node:net';
import { connect, type TLSSocket } from 'node:tls';

/** How the relay connects to exporters over TLS: PEM text, read and checked at start-up. */
export interface LinkTls {
  /** Authorities an exporter's certificate must be signed by; default Node's bundled ones. */
  readonly ca?: string;
  /** The relay's certificate and key, for exporters that require client certificates. */
  readonly cert?: string;
  readonly key?: string;
  /** The name an exporter's certificate must carry; default the host of its address. */
  readonly servername?: string;
  /** How long a handshake may take, in ms. */
  readonly handshakeTimeoutMs: number;
}

/** A TLS connection to `target`, destroyed with code `ETIMEDOUT` when its handshake takes longer than allowed. */
export function connectTls(target: { host: string; port: number } | { path: string }, t: LinkTls): TLSSocket {
  const where = 'path' in target ? { path: target.path } : { host: target.host, port: target.port };
  const servername = t.servername ?? ('host' in target && isIP(target.host) === 0 ? target.host : undefined);
  const socket = connect({ ...where, ca: t.ca, cert: t.cert, key: t.key, servername, minVersion: 'TLSv1.2' });
  socket.setTimeout(t.handshakeTimeoutMs, () =>
    socket.destroy(Object.assign(new Error(`no handshake in ${t.handshakeTimeoutMs} ms (does the exporter serve TLS?)`), { code: 'ETIMEDOUT' })),
  );
  socket.once('secureConnect', () => socket.setTimeout(0));
  return socket;
}

/**
 * Over TLS 1.3 an exporter checks the relay's certificate only after the relay's side of the
 * handshake is done, and refuses it by closing the connection (with an alert, or without a word).
 */
export const REFUSED_AFTER_HANDSHAKE =
  "the exporter closed the connection right after the handshake, sending nothing: it most likely refused the relay's certificate (is --tls-cert signed by an authority in the exporter's tls.ca?)";

/** What a failed handshake's code most likely means, in the relay's flags. */
const HINTS: Record<string, string> = {
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'the exporter requires a client certificate: give --tls-cert and --tls-key',
  ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: 'the exporter refused the handshake: it may require a client certificate (--tls-cert and --tls-key)',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: "the exporter refused the relay's certificate (--tls-cert): it is not signed by an authority in the exporter's tls.ca",
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: "the exporter refused the relay's certificate (--tls-cert)",
  ERR_SSL_WRONG_VERSION_NUMBER: 'the exporter does not speak TLS here (was it built without tls()?)',
  SELF_SIGNED_CERT_IN_CHAIN: "the exporter's certificate is not signed by an authority in --tls-ca",
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: "the exporter's certificate is not signed by an authority in --tls-ca",
  DEPTH_ZERO_SELF_SIGNED_CERT: "the exporter's certificate is self-signed and not in --tls-ca",
  CERT_HAS_EXPIRED: "the exporter's certificate has expired",
  ERR_TLS_CERT_ALTNAME_INVALID: "the exporter's certificate does not name the address the relay connects to (--tls-servername gives the name to expect)",
};

/** Why a handshake failed, in words: OpenSSL's reason without its source location, its code, and what it most likely means here. */
export function handshakeFailure(err: Error): string {
  const code = (err as NodeJS.ErrnoException).code;
  const reason = /:SSL routines:[^:]*:([^:]+):/.exec(err.message)?.[1] ?? err.message.trim();
  const hint = code === undefined ? undefined : HINTS[code];
  return `${reason}${code === undefined || reason.includes(code) ? '' : ` (${code})`}${hint === undefined ? '' : `: ${hint}`}`;
}
