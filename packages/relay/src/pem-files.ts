// Certificates and keys the relay reads from files (--tls-*, --otlp-tls-*, the web config's
// cert_file, key_file and client_ca_file, or its inline cert, key and client_ca): read and checked
// when the relay starts, so that a wrong file is an error that names it and says what is wrong,
// never a handshake that fails later.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';

/** PEM from a file, or given inline; `label` names where it came from (a flag, a web config key). */
export type PemSource = { readonly label: string; readonly path: string } | { readonly label: string; readonly text: string };

/** PEM by role. */
export interface PemFiles {
  /** Authorities: one or more certificates. */
  readonly ca?: PemSource;
  /** A certificate (the first of the file; the rest, if any, is its chain). */
  readonly cert?: PemSource;
  /** The private key of `cert`. */
  readonly key?: PemSource;
}

/** What {@link readPemFiles} read: PEM text, as `node:tls` takes it. */
export interface Pems {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

const CERTIFICATE = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g;

/** How a message names `s`: its label, and its file. */
const named = (s: PemSource) => ('path' in s ? `${s.label} ${s.path}` : s.label);

function read(s: PemSource): string {
  if ('text' in s) return s.text;
  try {
    return readFileSync(s.path, 'utf8');
  } catch (err) {
    throw new TypeError(`${named(s)}: cannot read it: ${(err as Error).message}`, { cause: err });
  }
}

/** The certificates of a PEM file, each checked to parse and to be valid now. */
function certificates(s: PemSource, text: string): X509Certificate[] {
  const where = named(s);
  const blocks = text.match(CERTIFICATE);
  if (blocks === null) throw new TypeError(`${where}: not a PEM certificate (no -----BEGIN CERTIFICATE----- block in it)`);
  const now = Date.now();
  return blocks.map((block, i) => {
    const which = blocks.length > 1 ? `certificate ${i + 1} of ${blocks.length}` : 'the certificate';
    let c: X509Certificate;
    try {
      c = new X509Certificate(block);
    } catch (err) {
      throw new TypeError(`${where}: ${which} does not parse: ${(err as Error).message}`, { cause: err });
    }
    if (Date.parse(c.validTo) < now) throw new TypeError(`${where}: ${which} (${c.subject.replace(/\n/g, ', ')}) expired on ${c.validTo}`);
    if (Date.parse(c.validFrom) > now) throw new TypeError(`${where}: ${which} (${c.subject.replace(/\n/g, ', ')}) is not valid before ${c.validFrom}`);
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
    throw new TypeError(`${named(given)} needs its ${missing} too: a certificate and its key go together`);
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
      throw new TypeError(`${named(key)}: not a PEM private key: ${(err as Error).message}`, { cause: err });
    }
    if (!leaf!.checkPrivateKey(k)) throw new TypeError(`${named(key)} is not the key of ${named(cert)} (they do not match)`);
  }
  return out;
}

/** Files of PEM: authorities, a certificate and its key. */
export interface PemFileNames {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/** {@link readPemFiles} of files given by the flags `<flag>-ca`, `<flag>-cert` and `<flag>-key` (e.g. `--tls-ca`). */
export function readFlagFiles(flag: string, files: PemFileNames): Pems {
  const source = (role: 'ca' | 'cert' | 'key'): PemSource | undefined => (files[role] === undefined ? undefined : { label: `${flag}-${role}`, path: files[role] });
  return readPemFiles({ ca: source('ca'), cert: source('cert'), key: source('key') });
}
