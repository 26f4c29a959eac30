// --web-config-file: the Prometheus exporter-toolkit's web configuration (TLS, client
// certificates, basic auth), read and checked when the relay starts. What this relay does not
// implement is refused by name, never ignored: a security setting that is silently dropped is
// worse than an error.
import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parse } from 'yaml';
import { readPemFiles, type PemSource } from './pem-files.js';

/** exporter-toolkit's `client_auth_type` values (Go's `tls.ClientAuthType`); `RequireClientCert` is its old name for `RequireAnyClientCert`. */
export type ClientAuth = 'NoClientCert' | 'RequestClientCert' | 'RequireAnyClientCert' | 'VerifyClientCertIfGiven' | 'RequireAndVerifyClientCert';
const CLIENT_AUTH: Record<string, ClientAuth> = {
  NoClientCert: 'NoClientCert',
  RequestClientCert: 'RequestClientCert',
  RequireAnyClientCert: 'RequireAnyClientCert',
  RequireClientCert: 'RequireAnyClientCert',
  VerifyClientCertIfGiven: 'VerifyClientCertIfGiven',
  RequireAndVerifyClientCert: 'RequireAndVerifyClientCert',
};
const TLS_VERSIONS = { TLS10: 'TLSv1', TLS11: 'TLSv1.1', TLS12: 'TLSv1.2', TLS13: 'TLSv1.3' } as const;
type TlsVersion = (typeof TLS_VERSIONS)[keyof typeof TLS_VERSIONS];

/** What /metrics serves with, from a web config file. */
export interface WebConfig {
  /** HTTPS: PEM text of the server's certificate and key, the client authorities, and the policy for client certificates. */
  readonly tls?: {
    readonly cert: string;
    readonly key: string;
    readonly ca?: string;
    readonly clientAuth: ClientAuth;
    /** A client certificate must carry one of these SANs (DNS, IP, e-mail or URI), exactly. */
    readonly allowedSans?: readonly string[];
    readonly minVersion: TlsVersion;
    readonly maxVersion: TlsVersion;
  };
  /** Basic auth: user → bcrypt hash. Empty: no basic auth. */
  readonly users: ReadonlyMap<string, string>;
  /** Headers added to every response. */
  readonly headers: Readonly<Record<string, string>>;
  /** The config file and the files it names: a change to any of them is a new config. */
  readonly files: readonly string[];
}

/** The state of files (inode, size, modification time, or missing): it differs once any of them changed. */
export async function filesState(files: readonly string[]): Promise<string> {
  const states = await Promise.all(files.map((f) => stat(f).then((s) => `${s.ino}:${s.size}:${s.mtimeMs}`, () => 'missing')));
  return states.join('|');
}

/** Whether a client must prove who it is to read /metrics: basic auth over TLS, or verified client certificates. */
export function clientsAuthenticate(c: WebConfig | undefined): boolean {
  return c?.tls !== undefined && (c.users.size > 0 || c.tls.clientAuth === 'RequireAndVerifyClientCert');
}

/** The headers exporter-toolkit lets a config set, and the values it allows (none listed: any). */
const HEADERS: Record<string, readonly string[] | undefined> = {
  'Strict-Transport-Security': undefined,
  'X-Content-Type-Options': ['nosniff'],
  'X-Frame-Options': ['deny', 'sameorigin'],
  'X-XSS-Protection': undefined,
  'Content-Security-Policy': undefined,
};

/** Keys of the format that this relay does not implement, and what to do instead. */
const UNSUPPORTED: Record<string, string> = {
  'tls_server_config.cipher_suites': "Go's cipher suite names; Node's (OpenSSL's) defaults for TLS 1.2 are used, and min_version: TLS13 leaves TLS 1.2 out",
  'tls_server_config.curve_preferences': "Node's (OpenSSL's) defaults are used",
  'tls_server_config.prefer_server_cipher_suites': "Node's (OpenSSL's) defaults are used",
  rate_limit: '--web-max-requests caps the scrapes in flight',
};

const BCRYPT = /^\$2[aby]?\$(0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

/**
 * Reads and checks a web config file: YAML with exporter-toolkit's keys only (strict, as
 * exporter-toolkit is), files relative to the config's folder, certificates and keys that parse
 * and match, bcrypt hashes, and exporter-toolkit's rules (a client CA needs a client_auth_type
 * that asks for certificates; TLS needs a certificate and a key).
 * @throws TypeError naming the file, the key and what is wrong.
 */
export function loadWebConfig(path: string): WebConfig {
  const fail = (what: string): never => {
    throw new TypeError(`--web-config-file ${path}: ${what}`);
  };
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return fail(`cannot read it: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text, { uniqueKeys: true, prettyErrors: false });
  } catch (err) {
    return fail(`not valid YAML: ${(err as Error).message}`);
  }
  doc ??= {};
  const object = (v: unknown, key: string): Record<string, unknown> => {
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) return fail(`${key} must be a mapping`);
    return v as Record<string, unknown>;
  };
  const keys = (o: Record<string, unknown>, at: string, known: readonly string[]) => {
    for (const k of Object.keys(o)) {
      const full = at === '' ? k : `${at}.${k}`;
      if (UNSUPPORTED[full] !== undefined) fail(`${full} is not supported by this relay (${UNSUPPORTED[full]})`);
      if (!known.includes(k)) fail(`unknown key ${full} (exporter-toolkit's keys here: ${known.join(', ')})`);
    }
  };
  const str = (o: Record<string, unknown>, k: string, at: string): string | undefined => {
    const v = o[k];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') return fail(`${at}.${k} must be a string`);
    return v;
  };
  const root = object(doc, 'the file');
  keys(root, '', ['tls_server_config', 'http_server_config', 'basic_auth_users', 'rate_limit']);

  // tls_server_config
  const t = object(root.tls_server_config, 'tls_server_config');
  keys(t, 'tls_server_config', ['cert', 'key', 'client_ca', 'cert_file', 'key_file', 'client_ca_file', 'client_auth_type', 'client_allowed_sans', 'min_version', 'max_version', 'cipher_suites', 'curve_preferences', 'prefer_server_cipher_suites']);
  const at = 'tls_server_config';
  const dir = dirname(path);
  /** A PEM source from an inline key or a file key (relative to the config's folder), not both. */
  const source = (inline: string, file: string): PemSource | undefined => {
    const [text, f] = [str(t, inline, at), str(t, file, at)];
    if (text !== undefined && f !== undefined) fail(`${at}.${inline} and ${at}.${file} are both given: give one`);
    return text !== undefined ? { label: `--web-config-file ${path}: ${at}.${inline}`, text } : f === undefined ? undefined : { label: `--web-config-file ${path}: ${at}.${file}`, path: resolve(dir, f) };
  };
  const [cert, key, ca] = [source('cert', 'cert_file'), source('key', 'key_file'), source('client_ca', 'client_ca_file')];
  const authName = str(t, 'client_auth_type', at);
  const clientAuth = authName === undefined ? 'NoClientCert' : (CLIENT_AUTH[authName] ?? fail(`${at}.client_auth_type ${authName} is not one of ${Object.keys(CLIENT_AUTH).join(', ')}`));
  const sans = t.client_allowed_sans;
  if (sans !== undefined && sans !== null && !(Array.isArray(sans) && sans.every((x) => typeof x === 'string'))) fail(`${at}.client_allowed_sans must be a list of strings`);
  const version = (k: string, dflt: TlsVersion): TlsVersion => {
    const v = str(t, k, at);
    return v === undefined ? dflt : ((TLS_VERSIONS as Record<string, TlsVersion>)[v] ?? fail(`${at}.${k} ${v} is not one of ${Object.keys(TLS_VERSIONS).join(', ')}`));
  };
  const [minVersion, maxVersion] = [version('min_version', 'TLSv1.2'), version('max_version', 'TLSv1.3')];
  let tls: WebConfig['tls'];
  if (cert !== undefined || key !== undefined || ca !== undefined || authName !== undefined) {
    if (cert === undefined) fail(`${at} needs cert_file (or cert) for TLS`);
    if (key === undefined) fail(`${at} needs key_file (or key) for TLS`);
    if (ca !== undefined && clientAuth === 'NoClientCert') fail(`${at}: client_ca_file is given but client_auth_type asks for no client certificate (RequireAndVerifyClientCert checks them against it)`);
    if (minVersion > maxVersion) fail(`${at}.min_version is above max_version`);
    const pems = readPemFiles({ cert, key, ca });
    tls = { cert: pems.cert!, key: pems.key!, ca: pems.ca, clientAuth, allowedSans: (sans as string[] | null | undefined) ?? undefined, minVersion, maxVersion };
  } else if (sans !== undefined && sans !== null) {
    fail(`${at}.client_allowed_sans needs TLS with client certificates`);
  }

  // http_server_config: headers; http2 is accepted (the relay serves HTTP/1.1 either way).
  const h = object(root.http_server_config, 'http_server_config');
  keys(h, 'http_server_config', ['http2', 'headers']);
  if (h.http2 !== undefined && h.http2 !== null && typeof h.http2 !== 'boolean') fail('http_server_config.http2 must be true or false');
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(object(h.headers, 'http_server_config.headers'))) {
    if (!(name in HEADERS)) fail(`http_server_config.headers: ${name} cannot be set (these can: ${Object.keys(HEADERS).join(', ')})`);
    if (typeof value !== 'string') fail(`http_server_config.headers.${name} must be a string`);
    const allowed = HEADERS[name];
    if (allowed !== undefined && !allowed.includes(value as string)) fail(`http_server_config.headers.${name} must be one of ${allowed.join(', ')}, got ${String(value)}`);
    if (value !== '') headers[name] = value as string;
  }

  // basic_auth_users: user → bcrypt hash.
  const users = new Map<string, string>();
  for (const [user, hash] of Object.entries(object(root.basic_auth_users, 'basic_auth_users'))) {
    if (user.includes(':')) fail(`basic_auth_users: user ${JSON.stringify(user)} has a colon, which basic auth cannot carry`);
    if (typeof hash !== 'string' || !BCRYPT.test(hash)) fail(`basic_auth_users.${user} is not a bcrypt hash ($2y$10$… as htpasswd -nBC 10 makes)`);
    users.set(user, hash as string);
  }
  const files = [path, ...[cert, key, ca].flatMap((src) => (src !== undefined && 'path' in src ? [src.path] : []))];
  return { tls, users, headers, files };
}
