// The live terminal view, built with Ink (React for terminals): it redraws only what changed,
// handles resizes and raw-mode keys, and ink-testing-library renders it to a string in tests.
// The layout itself comes from ObserverModel.lines(), a plain function of the data.
import { Box, Text, render, useApp, useInput, useStdout, type Instance } from 'ink';
import React from 'react';
import { NEAR_FULL, grouped, visible } from './format.js';
import type { BufferStatus, ObserverModel } from './model.js';

const h = React.createElement;

/** What the status bar shows; read on every redraw. */
export interface ObserverStatus {
  readonly address: string;
  readonly state: string;
  readonly eventsPerSec: number;
  /** Records the exporter reported this client did not get (its in-band drop counter). */
  readonly lost?: number;
  /** Frames left out past the series cap. */
  readonly refused?: number;
  /** The exporter's fill levels, once it has reported them. */
  readonly buffer?: BufferStatus;
}

/**
 * The status bar's buffer part: the fullest a ring got since connecting against the size
 * (highlighted when near it), and the size recommended when it is not the one in use.
 */
export function bufferText(b: BufferStatus): React.ReactElement {
  const near = b.ringPeakMax > NEAR_FULL * b.size;
  const share = Math.round((100 * b.ringPeakMax) / b.size);
  return h(
    Text,
    null,
    ' · ',
    h(Text, near ? { color: 'yellow', bold: true } : {}, `ring peak ${grouped(b.ringPeakMax)} / ${grouped(b.size)} (${share} %)`),
    b.recommended === b.size ? '' : ` · bufferSize ${grouped(b.recommended)} recommended`,
  );
}

export interface ObserverViewProps {
  readonly model: ObserverModel;
  readonly status: () => ObserverStatus;
  /** Redraw period. */
  readonly refreshMs?: number;
}

/** The observer screen: a status bar, the metric lines (scrollable), the key help. */
export function ObserverView({ model, status, refreshMs = 250 }: ObserverViewProps): React.ReactElement {
  const [, setTick] = React.useState(0);
  const [scroll, setScroll] = React.useState(0);
  const [descriptions, setDescriptions] = React.useState(false);
  const { exit } = useApp();
  const { stdout } = useStdout();
  React.useEffect(() => {
    const t = setInterval(() => setTick((n) => n + 1), refreshMs);
    return () => clearInterval(t);
  }, [refreshMs]);
  useInput((input, key) => {
    if (input === 'q' || key.escape) exit();
    else if (key.upArrow) setScroll((s) => Math.max(0, s - 1));
    else if (key.downArrow) setScroll((s) => s + 1);
    else if (input === 'd') setDescriptions((d) => !d);
  });
  const width = Math.max(40, (stdout.columns || 100) - 4);
  const height = Math.max(3, (stdout.rows || 30) - 8);
  const lines = model.lines(width, descriptions);
  const top = Math.min(scroll, Math.max(0, lines.length - height));
  const s = status();
  return h(
    Box,
    { flexDirection: 'column' },
    h(
      Box,
      { borderStyle: 'single', paddingX: 1 },
      h(
        Text,
        null,
        `metrics-exporter-tcp observer · ${visible(s.address)} · state: ${visible(s.state)} · ${s.eventsPerSec} events/s`,
        s.lost ? h(Text, { color: 'red' }, ` · lost: ${s.lost}`) : null,
        s.refused ? h(Text, { color: 'yellow' }, ` · refused: ${s.refused} (series cap)`) : null,
        s.buffer === undefined ? null : bufferText(s.buffer),
      ),
    ),
    h(
      Box,
      { borderStyle: 'single', paddingX: 1, flexDirection: 'column', minHeight: Math.min(height, lines.length) + 2 },
      lines.length === 0
        ? h(Text, { dimColor: true }, 'no metrics yet')
        : lines.slice(top, top + height).map((line, i) => h(Text, { key: `${top + i}` }, line)),
    ),
    h(Text, { dimColor: true }, `q quit · ↑/↓ scroll (${top + 1}-${Math.min(lines.length, top + height)} of ${lines.length}) · d ${descriptions ? 'hide' : 'show'} descriptions`),
  );
}

/** Draws the view on the terminal until the user quits. */
export function runTui(props: ObserverViewProps): Instance {
  return render(h(ObserverView, props), { exitOnCtrlC: true });
}
