// Certificates for the TLS tests, made at test time with the openssl command (never committed):
// two authorities, a server certificate for 127.0.0.1 and localhost, and client certificates.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Pair {
  key: string;
  cert: string;
}

export interface Certs {
  /** The authority that signed `server` and `client`. */
  ca: Pair;
  server: Pair;
  client: Pair;
  /** Another authority, and a client certificate it signed. */
  otherCa: Pair;
  otherClient: Pair;
  /** The folder the PEM files are in (`ca.crt`, `server.key`, …), for tools that take files. */
  dir: string;
  remove(): void;
}

export const NO_OPENSSL = 'openssl not found (Debian package openssl): TLS tests skipped';

/** Whether the openssl command is here. */
export function haveOpenssl(): boolean {
  return spawnSync('openssl', ['version']).status === 0;
}

function openssl(dir: string, args: string[]): void {
  const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr}`);
}

/** Makes every certificate, in a new temporary folder (P-256 keys: fast to make, valid a day). */
export function makeCerts(): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'mtcp-certs-'));
  const key = (name: string) => openssl(dir, ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`]);
  const authority = (name: string) => {
    key(name);
    openssl(dir, ['req', '-x509', '-new', '-key', `${name}.key`, '-out', `${name}.crt`, '-days', '1', '-subj', `/CN=${name}`]);
  };
  const signed = (name: string, by: string, ext: string) => {
    key(name);
    openssl(dir, ['req', '-new', '-key', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    writeFileSync(join(dir, `${name}.ext`), ext);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', `${by}.crt`, '-CAkey', `${by}.key`, '-CAcreateserial', '-out', `${name}.crt`, '-days', '1', '-extfile', `${name}.ext`]);
  };
  authority('ca');
  authority('other-ca');
  signed('server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  signed('client', 'ca', 'extendedKeyUsage=clientAuth\n');
  signed('other-client', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  const pair = (name: string): Pair => ({ key: readFileSync(join(dir, `${name}.key`), 'utf8'), cert: readFileSync(join(dir, `${name}.crt`), 'utf8') });
  return {
    ca: pair('ca'),
    server: pair('server'),
    client: pair('client'),
    otherCa: pair('other-ca'),
    otherClient: pair('other-client'),
    dir,
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
