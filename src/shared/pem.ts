import { createRequire } from 'node:module';

// node:crypto is loaded when a PEM is first checked: most apps never use TLS, and it costs 2 MB.
const load = createRequire(import.meta.url);
const crypto = (): typeof import('node:crypto') => load('node:crypto') as typeof import('node:crypto');

/** PEM text, as a string or the bytes of a file. */
export type Pem = string | Buffer;

/** The PEM of option `what`, as a string; a `TypeError` naming the option otherwise. */
export function pemText(what: string, v: unknown): string {
  if (typeof v === 'string') return v;
  if (Buffer.isBuffer(v)) return v.toString('utf8');
  throw new TypeError(`${what} must be PEM text (a string or a Buffer), got ${v === null ? 'null' : typeof v}`);
}

/** Runs `parse`; rethrows what it throws as a `TypeError` that names option `what`. */
export function usable(what: string, parse: () => unknown): void {
  try {
    parse();
  } catch (err) {
    throw new TypeError(`${what} is not usable: ${(err as Error).message}`, { cause: err });
  }
}

/** Certificates (one PEM, or a list), as strings, each checked to parse. */
export function certificates(what: string, v: Pem | readonly Pem[]): string[] {
  return (Array.isArray(v) ? v : [v]).map((c: unknown, i) => {
    const text = pemText(`${what}[${i}]`, c);
    usable(`${what}[${i}]`, () => new (crypto().X509Certificate)(text));
    return text;
  });
}

/** A private key as a string, checked to parse. */
export function privateKey(what: string, v: unknown): string {
  const text = pemText(what, v);
  usable(what, () => crypto().createPrivateKey(text));
  return text;
}

/** A certificate as a string, checked to parse. */
export function certificate(what: string, v: unknown): string {
  const text = pemText(what, v);
  usable(what, () => new (crypto().X509Certificate)(text));
  return text;
}
