// The relay's /metrics: its series grouped into Prometheus families (named as the client's
// prometheus module says), each series that cannot be shown faithfully left out, counted and
// named once in the log; written as chunks from a frozen copy of the values, so that a slow
// scraper holds only that copy, and nothing is one big string. In the text format (classic
// buckets), or the protobuf format for a scraper that asks for it (native histograms too).
import {
  TextChunks,
  escapeHelp,
  escapeLabelValue,
  familyName,
  formatValue,
  labelPairs,
  labelText,
  protobufChunks,
  sampleNames,
  sparse,
  type FamilyData,
  type FamilyMember,
  type MetricKind,
} from 'metrics-exporter-tcp/client';
import { HEALTH_NAMES, healthMetrics, type HealthMetric, type HiddenCounts, type HiddenReason } from './health.js';
import type { MirrorSeries, RelayMirror } from './mirror.js';
import { lossReason } from './store.js';

/** A series in its family, with its label text (`a="1",exporter="h:1"`). */
interface Member {
  readonly series: MirrorSeries;
  readonly labels: string;
}

/** One Prometheus family: the series of one name and type, over every exporter. */
interface Family {
  readonly name: string;
  readonly type: MetricKind;
  help: string | undefined;
  readonly members: Member[];
}

/** How many values a series takes in a frozen copy. */
const width = (s: MirrorSeries) => (s.kind === 'counter' ? 1 : s.kind === 'gauge' ? 2 : 3 + s.bounds!.length);

/** `{labels}`, or nothing for none. */
const braces = (labels: string) => (labels === '' ? '' : `{${labels}}`);

/** The most hidden series one log line names. */
const NAMED_PER_LINE = 10;

/** Writes the relay's /metrics from its {@link RelayMirror}. */
export class Exposition {
  /** The mirror's `structure` the families were built for. */
  private builtFor = -1;
  private families: Family[] = [];
  private hidden: HiddenCounts = new Map();
  /** Each series' label text (`null`: two of its labels sanitize alike), made once. */
  private readonly labels = new WeakMap<MirrorSeries, string | null>();
  /** Hidden series already named in the log. */
  private readonly named = new WeakSet<MirrorSeries>();

  constructor(
    private readonly mirror: RelayMirror,
    private readonly log: (line: string) => void,
  ) {}

  /**
   * The exposition of the mirror as it is now (the relay's health first), as chunks of about
   * 64 KiB made as they are pulled: the values are copied now, so the mirror may change while
   * the chunks are written.
   */
  render(format: 'text' | 'protobuf' = 'text'): Iterator<Buffer> {
    this.build();
    const health = healthMetrics(this.mirror, this.hidden);
    if (format === 'protobuf') return this.protobuf(health);
    const families = this.families;
    let size = 0;
    for (const f of families) for (const m of f.members) size += width(m.series);
    const values = new Float64Array(size);
    let p = 0;
    for (const f of families) {
      for (const { series: s } of f.members) {
        if (s.kind === 'counter') values[p++] = s.big === undefined ? s.total : Number(s.big);
        else if (s.kind === 'gauge') {
          values[p++] = s.known ? 1 : 0;
          values[p++] = s.value;
        } else {
          values[p++] = s.count;
          values[p++] = s.sum;
          values.set(s.counts!, p);
          p += s.counts!.length;
        }
      }
    }
    return write(health, families, values);
  }

  /**
   * Groups the mirror's series into families, when its series or metadata changed since. Names
   * are claimed by families: where two types want one name (or a histogram's `_count` is
   * another's name), the one more exporters use gets it (on a tie, the one seen first), so one
   * exporter cannot take a name from the others; the series of the other are hidden.
   */
  private build(): void {
    if (this.builtFor === this.mirror.structure) return;
    this.builtFor = this.mirror.structure;
    const hidden = new Map<string, Record<HiddenReason, number>>();
    const newlyHidden = new Map<string, string[]>();
    const hide = (s: MirrorSeries, why: HiddenReason) => {
      let h = hidden.get(s.exporter);
      if (h === undefined) hidden.set(s.exporter, (h = { name_clash: 0, duplicate: 0, label_clash: 0 }));
      h[why]++;
      if (this.named.has(s)) return;
      this.named.add(s);
      const list = newlyHidden.get(s.exporter) ?? [];
      newlyHidden.set(s.exporter, list);
      list.push(`${s.kind} ${s.name}{${Object.entries(s.labels).map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}} (${why})`);
    };
    // Every type + name that series want, with the exporters that want it, in the order first seen.
    const wanted = new Map<string, Family & { readonly exporters: Set<string>; readonly order: number }>();
    for (const s of this.mirror.series()) {
      if (lossReason(s.kind, s.name, s.labels) !== undefined) continue; // in the relay's own loss family
      const labels = this.labelsOf(s);
      if (labels === null) {
        hide(s, 'label_clash');
        continue;
      }
      const meta = this.mirror.metadataOf(s.exporter, s.name);
      const name = familyName(s.name, s.kind, meta?.unit);
      const id = `${s.kind} ${name}`;
      let f = wanted.get(id);
      if (f === undefined) wanted.set(id, (f = { name, type: s.kind, help: undefined, members: [], exporters: new Set(), order: wanted.size }));
      f.exporters.add(s.exporter);
      f.members.push({ series: s, labels });
      f.help ??= meta?.description;
    }
    const taken = new Set<string>(HEALTH_NAMES); // every sample name a family writes
    const families: (Family & { order: number })[] = [];
    for (const f of [...wanted.values()].sort((a, b) => b.exporters.size - a.exporters.size || a.order - b.order)) {
      const own = new Set([f.name, ...sampleNames(f.name, f.type)]);
      if ([...own].some((n) => taken.has(n))) {
        for (const m of f.members) hide(m.series, 'name_clash');
        continue;
      }
      own.forEach((n) => taken.add(n));
      // Series that sanitize to the same labels: the first stays.
      const seen = new Set<string>();
      const members = f.members.filter((m) => {
        if (!seen.has(m.labels)) return seen.add(m.labels);
        hide(m.series, 'duplicate');
        return false;
      });
      families.push({ name: f.name, type: f.type, help: f.help, members, order: f.order });
    }
    this.families = families.sort((a, b) => a.order - b.order);
    this.hidden = hidden;
    for (const [exporter, list] of newlyHidden) {
      const more = list.length > NAMED_PER_LINE ? `; and ${list.length - NAMED_PER_LINE} more` : '';
      this.log(`relay: /metrics hides ${list.length} more series of ${exporter} (metrics_exporter_tcp_relay_series_hidden): ${list.slice(0, NAMED_PER_LINE).join('; ')}${more}`);
    }
  }

  /** The protobuf format: every value copied now into the messages' input, encoded as pulled. */
  private protobuf(health: readonly HealthMetric[]): Iterator<Buffer> {
    const value = (type: MetricKind, labels: [string, string][], v: number): FamilyMember => (type === 'counter' ? { labels, counter: v } : { labels, gauge: v });
    const out: FamilyData[] = health.map((h) => ({ name: h.name, type: h.type, help: h.help, members: h.samples.map((x) => value(h.type, labelPairs(x.labels, false)!, x.value)) }));
    for (const f of this.families) {
      const members: FamilyMember[] = [];
      for (const { series: s } of f.members) {
        const labels = labelPairs(s.labels, s.kind === 'histogram', { exporter: s.exporter })!; // no clash: those are hidden
        if (s.kind === 'counter') members.push(value('counter', labels, s.big === undefined ? s.total : Number(s.big)));
        else if (s.kind === 'gauge') {
          if (s.known) members.push(value('gauge', labels, s.value)); // its base is unknown until a set arrives
        } else {
          let sum = 0;
          const cumulative = [...s.counts!].map((n) => (sum += n));
          const histogram = { count: s.count, sum: s.sum, bounds: s.bounds!, cumulative, schema: s.schema, zeroCount: s.zeroCount, positive: sparse(pairs(s.positive)), negative: sparse(pairs(s.negative)) };
          members.push({ labels, histogram });
        }
      }
      out.push({ name: f.name, type: f.type, help: helpOf(f), members });
    }
    return protobufChunks(out);
  }

  private labelsOf(s: MirrorSeries): string | null {
    let l = this.labels.get(s);
    if (l === undefined) this.labels.set(s, (l = labelText(s.labels, s.kind === 'histogram', { exporter: s.exporter }) ?? null));
    return l;
  }
}

/** `flat` (index, count, index, count, …) as pairs. */
function* pairs(flat: Float64Array): Generator<[number, number]> {
  for (let i = 0; i < flat.length; i += 2) yield [flat[i]!, flat[i + 1]!];
}

/** A family's HELP: the exporter's description, or where it came from. */
const helpOf = (f: Family) => f.help ?? `${f.members[0]!.series.name} (from metrics-exporter-tcp)`;

/** The HELP and TYPE lines of a family. */
const header = (name: string, type: string, help: string) => `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`;

/** The `le` label values of `bounds`, then `+Inf`, made once per set of bounds. */
const leTexts = new Map<string, readonly string[]>();
function leOf(bounds: readonly number[]): readonly string[] {
  const key = bounds.join();
  let le = leTexts.get(key);
  if (le === undefined) leTexts.set(key, (le = [...bounds.map(formatValue), '+Inf']));
  return le;
}

/** The text of `health` then `families` (with their values frozen in `values`), in chunks. */
function* write(health: readonly HealthMetric[], families: readonly Family[], values: Float64Array): Generator<Buffer> {
  const out = new TextChunks();
  let chunk: Buffer | undefined;
  for (const h of health) {
    if ((chunk = out.add(header(h.name, h.type, h.help)))) yield chunk;
    for (const { labels, value } of h.samples) if ((chunk = out.add(`${h.name}${braces(labelText(labels, false) ?? '')} ${formatValue(value)}\n`))) yield chunk;
  }
  let p = 0;
  for (const f of families) {
    if ((chunk = out.add(header(f.name, f.type, helpOf(f))))) yield chunk;
    for (const { labels, series } of f.members) {
      let text: string;
      if (f.type === 'counter') text = `${f.name}{${labels}} ${formatValue(values[p++]!)}\n`;
      else if (f.type === 'gauge') {
        const known = values[p++] === 1;
        const v = values[p++]!;
        if (!known) continue; // its base is unknown until a set arrives
        text = `${f.name}{${labels}} ${formatValue(v)}\n`;
      } else {
        const count = values[p++]!;
        const sum = values[p++]!;
        const le = leOf(series.bounds!);
        text = '';
        let cumulative = 0;
        for (let i = 0; i < le.length - 1; i++) text += `${f.name}_bucket{${labels},le="${le[i]}"} ${(cumulative += values[p++]!)}\n`;
        p++; // the +Inf bucket is the count
        text += `${f.name}_bucket{${labels},le="+Inf"} ${count}\n${f.name}_sum{${labels}} ${formatValue(sum)}\n${f.name}_count{${labels}} ${count}\n`;
      }
      if ((chunk = out.add(text))) yield chunk;
    }
  }
  if ((chunk = out.flush())) yield chunk;
}
