// A worker pipeline on its own, for the tests of its drain loop (pipeline.test.ts) and of the
// frame kernel (kernel.test.ts).
import { journalBytes } from '../src/shared/layout.js';
import { StatsBlock } from '../src/shared/stats-block.js';
import { WallClock } from '../src/worker/clock.js';
import { KeyTable } from '../src/worker/keys.js';
import { MetadataStore } from '../src/worker/metadata.js';
import { Pipeline, type PipelineParts } from '../src/worker/pipeline.js';
import type { RingReader } from '../src/worker/ring-reader.js';
import { Counters } from '../src/worker/stats.js';
import type { Transport } from '../src/worker/transport/server.js';

/** A pipeline draining `main` into `transport`, with everything else as the worker makes it unless `parts` says otherwise. */
export function pipelineOver(ctl: SharedArrayBuffer, main: RingReader, transport: Transport, parts: Partial<PipelineParts> = {}): Pipeline {
  return new Pipeline({
    protocol: 'seed',
    ctl: new Int32Array(ctl),
    main,
    keys: new KeyTable(),
    metadata: new MetadataStore(10_000, () => {}),
    transport,
    counters: new Counters(new StatsBlock(ctl)),
    clock: new WallClock(),
    flushIntervalMs: 50,
    replay: undefined,
    replayOnConnect: parts.replay !== undefined,
    warn: () => {},
    journal: new SharedArrayBuffer(journalBytes(parts.replay !== undefined)),
    released: () => {},
    exiting: () => {},
    ...parts,
  });
}
