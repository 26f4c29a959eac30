import { closeAttachedRings } from './attach.js';

/**
 * What happens to the recorders of a process that ends: each one not closed delivers at exit
 * what was recorded, and `closeOnSignals()` closes them on a signal. One listener per event for
 * all recorders, so that none ends the process while another is still delivering.
 */

/** Asks a recorder's worker to deliver now; returns how to wait for it, if there is anything to wait for. */
type AskToFlush = () => (() => void) | undefined;

const open = new Map<object, AskToFlush>();
let exitHooked = false;

/**
 * When the process exits without `close()` (`process.exit()`, the end of the script, an uncaught
 * exception), `owner` delivers first: 'exit' listeners can only run synchronous code, so this
 * thread waits for the workers, each bounded by its `closeTimeoutMs` (as pino's `flushSync`
 * waits for its worker thread). Every worker is asked before any is waited for.
 */
export function flushAtExit(owner: object, ask: AskToFlush): void {
  open.set(owner, ask);
  if (exitHooked) return;
  exitHooked = true;
  process.on('exit', () => {
    closeAttachedRings(); // rings attached from this thread too, whichever exit listener runs first
    const waits = [...open.values()].map((a) => a());
    for (const wait of waits) wait?.();
  });
}

/** `owner` has closed: nothing to deliver at exit. */
export function closed(owner: object): void {
  open.delete(owner);
}

/** Per signal, the recorders to close on it. */
const onSignal = new Map<NodeJS.Signals, Map<object, () => Promise<void>>>();

function signalled(signal: NodeJS.Signals): void {
  const closing = [...(onSignal.get(signal)?.entries() ?? [])];
  // Each closes once: what it asked for other signals goes too.
  for (const [owner] of closing) for (const s of [...onSignal.keys()]) forget(s, owner);
  void Promise.all(closing.map(([, close]) => close().catch(() => {}))).then(() => {
    // The process ends as the signal would have ended it, unless the app handles the signal.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}

function forget(signal: NodeJS.Signals, owner: object): void {
  const owners = onSignal.get(signal);
  if (owners === undefined || !owners.delete(owner) || owners.size > 0) return;
  onSignal.delete(signal);
  process.off(signal, signalled);
}

/** See `TcpRecorder.closeOnSignals()`. @returns a function that removes `owner`'s listeners */
export function closeOnSignals(owner: object, close: () => Promise<void>, signals: readonly NodeJS.Signals[]): () => void {
  for (const s of signals) {
    let owners = onSignal.get(s);
    if (owners === undefined) {
      onSignal.set(s, (owners = new Map()));
      process.on(s, signalled);
    }
    owners.set(owner, close);
  }
  return () => {
    for (const s of signals) forget(s, owner);
  };
}
