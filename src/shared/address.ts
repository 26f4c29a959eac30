/** Longest unix socket path: sun_path holds 108 bytes on Linux, 104 on macOS and the BSDs, with the terminating NUL. */
const MAX_SOCKET_PATH_BYTES = process.platform === 'linux' ? 107 : 103;

/** Where the exporter listens: a TCP host and port, or a unix socket path. */
export type ListenAddress = { readonly host: string; readonly port: number } | { readonly path: string };
/** What was actually bound (port 0 resolved to the real port). */
export type BoundAddress = ListenAddress;

/** The seed binds 0.0.0.0:5000; we bind loopback unless told otherwise. */
export const DEFAULT_LISTEN: ListenAddress = { host: '127.0.0.1', port: 5000 };

/**
 * Parses `'host:port'`, `'[v6]:port'`, `{ host, port }` or `{ path }`.
 * @throws TypeError when the address is malformed.
 */
export function parseListenAddress(addr: unknown): ListenAddress {
  if (typeof addr === 'string') {
    const m = /^(?:\[([^\]]+)\]|([^:\[\]]+)):(\d{1,5})$/.exec(addr);
    if (m === null) {
      throw new TypeError(`listenAddress must be 'host:port' or '[ipv6]:port', got ${JSON.stringify(addr)}`);
    }
    return checkPort({ host: (m[1] ?? m[2]) as string, port: Number(m[3]) });
  }
  if (typeof addr === 'object' && addr !== null) {
    const a = addr as Record<string, unknown>;
    if (typeof a.path === 'string' && a.path.length > 0) {
      // The kernel keeps a socket's path in a fixed array (sun_path): a longer one would be
      // bound cut short, somewhere else.
      if (Buffer.byteLength(a.path) > MAX_SOCKET_PATH_BYTES) {
        throw new RangeError(`a unix socket path may be at most ${MAX_SOCKET_PATH_BYTES} bytes, got ${Buffer.byteLength(a.path)}: ${a.path}`);
      }
      return { path: a.path };
    }
    if (typeof a.host === 'string' && a.host.length > 0 && typeof a.port === 'number') {
      return checkPort({ host: a.host, port: a.port });
    }
  }
  throw new TypeError('listenAddress must be a string, { host, port } or { path }');
}

function checkPort(a: { host: string; port: number }): ListenAddress {
  if (!Number.isInteger(a.port) || a.port < 0 || a.port > 65535) {
    throw new TypeError(`listenAddress port must be an integer from 0 to 65535, got ${a.port}`);
  }
  return a;
}

/** True for addresses that accept connections from other machines. */
export function isWildcard(addr: ListenAddress): boolean {
  return 'host' in addr && (addr.host === '0.0.0.0' || addr.host === '::' || addr.host === '[::]');
}

/** `host:port`, `[v6]:port` or the socket path, for messages. */
export function formatAddress(addr: ListenAddress): string {
  if ('path' in addr) return addr.path;
  return addr.host.includes(':') ? `[${addr.host}]:${addr.port}` : `${addr.host}:${addr.port}`;
}
