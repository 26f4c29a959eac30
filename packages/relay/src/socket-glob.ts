// `--connect /run/app/metrics-*.sock`: the unix sockets a glob matches, rescanned, so that an app
// with one exporter per worker process (node:cluster) is relayed as one exporter per socket. A
// glob trusts nothing it finds: no symbolic links, only sockets of the relay's own user (or of
// uids allowed), and a warning for a directory other users can write.
import type { Stats } from 'node:fs';
import { lstat, readdir, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { repeat } from './repeat.js';

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

/** The uids whose sockets a glob takes: the relay's own user's, and `allow`. */
export function socketOwners(allow: readonly number[] = []): ReadonlySet<number> {
  return new Set([process.getuid?.() ?? -1, ...allow]);
}

/**
 * Why the file a glob matched, as `lstat` describes it, is not read: a symbolic link (never
 * followed: it could lead anywhere, e.g. into a directory the relay's user alone may enter), or
 * a socket of another owner. `undefined` for a socket to read, `null` for anything else (not a
 * socket: passed over without a word).
 */
export function socketRefusal(st: Stats, owners: ReadonlySet<number>): string | undefined | null {
  if (st.isSymbolicLink()) return 'a symbolic link (a glob never follows one)';
  if (!st.isSocket()) return null;
  if (!owners.has(st.uid)) return `owned by uid ${st.uid} (not this user, uid ${process.getuid?.()}): --allow-uid ${st.uid} accepts it`;
  return undefined;
}

/**
 * The unix sockets `pattern` matches now that `owners` own, sorted; none when its directory is
 * missing. What it passes over for a reason (links, other owners' sockets) goes to `skipped`.
 */
export async function matchSockets(pattern: string, owners = socketOwners(), skipped: (path: string, why: string) => void = () => {}): Promise<string[]> {
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
    const s = await lstat(path).catch(() => undefined);
    const why = s === undefined ? null : socketRefusal(s, owners);
    if (why === undefined) found.push(path);
    else if (why !== null) skipped(path, why);
  }
  return found;
}

/**
 * Why directory `dir` is not safe for sockets the relay trusts: whoever else can write it can
 * put sockets and links there, and swap a socket for a link between a check and a connect.
 * `undefined` when only the relay's user (or root) can write it.
 */
async function unsafeDirectory(dir: string): Promise<string | undefined> {
  const s = await stat(dir).catch(() => undefined);
  if (s === undefined) return undefined;
  const mode = (s.mode & 0o7777).toString(8);
  if ((s.mode & 0o022) !== 0) return `is writable by other users (mode ${mode})`;
  if (s.uid !== 0 && s.uid !== process.getuid?.()) return `belongs to uid ${s.uid}, another user (mode ${mode})`;
  return undefined;
}

/** How {@link watchSockets} looks. */
export interface WatchOptions {
  /** How often to rescan, in ms. */
  readonly everyMs: number;
  /** Whose sockets to take (see {@link socketOwners}). */
  readonly owners: ReadonlySet<number>;
  /** Where skipped sockets and unsafe directories are said (each once). */
  readonly log: (line: string) => void;
}

/**
 * Watches globs: calls `added` for each socket path that appears and `removed` for each that
 * goes, at once and then every `everyMs`. A file passed over is logged when it appears (or its
 * reason changes), a directory others can write once. `close()` stops it.
 */
export function watchSockets(patterns: readonly string[], o: WatchOptions, added: (path: string) => void, removed: (path: string) => void): { close(): void } {
  let known = new Set<string>();
  let said = new Map<string, string>();
  const warned = new Set<string>();
  return repeat(o.everyMs, async (stopped) => {
    const skipped = new Map<string, string>();
    const dirs = [...new Set(patterns.map((p) => dirname(p)))].filter((d) => !warned.has(d));
    const unsafe = await Promise.all(dirs.map(unsafeDirectory));
    const now = new Set((await Promise.all(patterns.map((p) => matchSockets(p, o.owners, (path, why) => skipped.set(path, why))))).flat());
    if (stopped()) return;
    dirs.forEach((d, i) => {
      if (unsafe[i] === undefined) return;
      warned.add(d);
      o.log(`relay: warning: ${d} ${unsafe[i]}: they can put sockets and links there; the relay takes no links and only sockets of uid ${[...o.owners].join(', ')}, but keep exporters' sockets in a directory only their user can write`);
    });
    for (const [path, why] of skipped) if (said.get(path) !== why) o.log(`relay: ${path}: skipped, ${why}`);
    said = skipped;
    for (const p of now) if (!known.has(p)) added(p);
    for (const p of known) if (!now.has(p)) removed(p);
    known = now;
  });
}
