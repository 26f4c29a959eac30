// Certificates and keys the relay reads from files (--tls-*, --otlp-tls-*, the web config's
// cert_file, key_file and client_ca_file): read once at start-up and checked there, so that a
// wrong file is an error that names it and says what is wrong, never a handshake that fails later.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** PEM files by role; each is given as `[label, path]`, the label naming where it came from (a flag, a web config key). */
export interface PemFiles {
  /** Authorities: one or more certificates. */
  readonly ca?: readonly [label: string, path: string];
  /** A certificate (the first of the file; the rest, if any, is its chain). */
  readonly cert?: readonly [label: string, path: string];
  /** The private key of `cert`. */
  readonly key?: readonly [label: string, path: string];
}

/** What {@link readPemFiles} read: PEM text, as `node:tls` takes it. */
export interface Pems {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

function read([label, path]: readonly [string, string]): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new TypeError(`${label} ${path}: cannot read it: ${(err as Error).message}`, { cause: err });
  }
}

/** The certificates of a PEM file, each checked to parse and to be valid now. */
function certificates([label, path]: readonly [string, string], text: string): X509Certificate[] {
  const blocks = text.match(CERTIFICATE);
  if (blocks === null) throw new TypeError(`${label} ${path}: not a PEM certificate (no -----BEGIN CERTIFICATE----- block in it)`);
  const now = Date.now();
  return blocks.map((block, i) => {
    const which = blocks.length > 1 ? `certificate ${i + 1} of ${blocks.length}` : 'the certificate';
    let c: X509Certificate;
    try {
      c = new X509Certificate(block);
    } catch (err) {
      throw new TypeError(`${label} ${path}: ${which} does not parse: ${(err as Error).message}`, { cause: err });
    }
    if (Date.parse(c.validTo) < now) throw new TypeError(`${label} ${path}: ${which} (${c.subject.replace(/\n/g, ', ')}) expired on ${c.validTo}`);
    if (Date.parse(c.validFrom) > now) throw new TypeError(`${label} ${path}: ${which} (${c.subject.replace(/\n/g, ', ')}) is not valid before ${c.validFrom}`);
    return c;
  });
}

/**
 * Reads and checks PEM files: each readable; `ca` and `cert` hold certificates that parse and
 * are valid now; `key` is a private key, and the key of `cert` (given together, or neither).
 * @throws TypeError naming the label and file, and what is wrong.
 */
export function readPemFiles(files: PemFiles): Pems {
  const { ca, cert, key } = files;
  if ((cert === undefined) !== (key === undefined)) {
    const [given, missing] = cert === undefined ? [key!, 'certificate'] : [cert, 'private key'];
    throw new TypeError(`${given[0]} ${given[1]} needs its ${missing} too: a certificate and its key go together`);
  }
  const out: { ca?: string; cert?: string; key?: string } = {};
  if (ca !== undefined) {
    out.ca = read(ca);
    certificates(ca, out.ca);
  }
  if (cert !== undefined && key !== undefined) {
    out.cert = read(cert);
    const [leaf] = certificates(cert, out.cert);
    out.key = read(key);
    let k;
    try {
      k = createPrivateKey(out.key);
    } catch (err) {
      throw new TypeError(`${key[0]} ${key[1]}: not a PEM private key: ${(err as Error).message}`, { cause: err });
    }
    if (!leaf!.checkPrivateKey(k)) throw new TypeError(`${key[0]} ${key[1]} is not the key of ${cert[0]} ${cert[1]} (they do not match)`);
  }
  return out;
}
