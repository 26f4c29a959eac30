// `--connect /run/app/metrics-*.sock`: the unix sockets a glob matches, rescanned, so that an app
// with one exporter per worker process (node:cluster) is relayed as one exporter per socket.
import { readdir, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';

/** True when `address` is a socket path with a wildcard (`*`, `?` or `[…]`); {@link globMatcher} says whether it is a valid glob. */
export function isSocketGlob(address: string): boolean {
  return (address.startsWith('/') || address.startsWith('.')) && /[*?[]/.test(address);
}

/**
 * `pattern`'s file name as a regular expression: `*` any run of characters, `?` one, `[…]` one
 * of a set (`[!…]` none of it); everything else literally. Names starting with `.` match only
 * when the pattern's name does, as in a shell.
 * @throws TypeError when the directory part has a wildcard (only the file name may).
 */
export function globMatcher(pattern: string): RegExp {
  if (/[*?[]/.test(dirname(pattern))) throw new TypeError(`--connect ${pattern}: only the file name may have wildcards`);
  let re = '';
  const name = basename(pattern);
  for (let i = 0; i < name.length; i++) {
    const c = name[i]!;
    const close = c === '[' ? name.indexOf(']', i + 2) : -1;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (close > 0) {
      const set = name.slice(i + 1, close);
      const negate = set.startsWith('!');
      re += `[${negate ? '^' : ''}${(negate ? set.slice(1) : set).replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else re += c.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(name.startsWith('.') ? `^${re}$` : `^(?!\\.)${re}$`);
}

/** The unix sockets `pattern` matches now, sorted; none when its directory is missing. */
export async function matchSockets(pattern: string): Promise<string[]> {
  const dir = dirname(pattern);
  const matcher = globMatcher(pattern);
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const found: string[] = [];
  for (const name of names.filter((n) => matcher.test(n)).sort()) {
    const path = dir.endsWith('/') ? `${dir}${name}` : `${dir}/${name}`; // as the user spelled the directory
    const s = await stat(path).catch(() => undefined);
    if (s?.isSocket()) found.push(path);
  }
  return found;
}

/**
 * Watches globs: calls `added` for each socket path that appears and `removed` for each that
 * goes, at once and then every `everyMs`. `close()` stops it.
 */
export function watchSockets(patterns: readonly string[], everyMs: number, added: (path: string) => void, removed: (path: string) => void): { close(): void } {
  let known = new Set<string>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  const scan = async () => {
    const now = new Set((await Promise.all(patterns.map(matchSockets))).flat());
    if (stopped) return;
    for (const p of now) if (!known.has(p)) added(p);
    for (const p of known) if (!now.has(p)) removed(p);
    known = now;
    timer = setTimeout(scan, everyMs);
    timer.unref();
  };
  void scan();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
