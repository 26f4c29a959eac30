import { protobufChunks, type FamilyMember, type Format } from '../../client/exposition-format.js';
import type { HistogramAggregate } from '../../client/native-histogram.js';
import { TextChunks, escapeHelp, escapeLabelValue, familyName, formatValue, labelPairs } from '../../client/prometheus.js';
import type { MetricKind } from '../../shared/messages.js';
import type { HistogramSeries } from './histograms.js';

/** What the endpoint knows of a metric name from its registration. */
export interface NameInfo {
  readonly kind: MetricKind;
  readonly unit: string | undefined;
  readonly description: string | undefined;
  /** A histogram's classic bucket bounds, if chosen at registration. */
  readonly buckets: readonly number[] | undefined;
}

/** A counter's or a gauge's series as the exposition reads it. */
export interface ValueSeries {
  /** The key's canonical form (see `normalizeKey`); the exporter's own figures have none. */
  readonly canonical?: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly kind: 'counter' | 'gauge';
  /** A counter's total is `hi * 2^32 + lo`, exact to 2^64; a gauge's value is `lo`. */
  readonly lo: number;
  readonly hi: number;
}

/** One series of a family, with its labels (sanitized) and their text (`a="1",b="2"`). */
interface Member {
  readonly pairs: [string, string][];
  readonly labels: string;
  readonly value?: ValueSeries;
  readonly histogram?: HistogramAggregate;
}

/** A Prometheus metric family: one name, one type. */
export interface Family {
  readonly name: string;
  readonly type: MetricKind;
  readonly help: string;
  readonly unit: string | undefined;
  readonly members: Member[];
}

/** The exporter's families, and how many series could not be shown faithfully. */
export interface Families {
  readonly families: Family[];
  /** Series whose family name another type took, or whose labels sanitize alike. */
  readonly hidden: number;
}

/**
 * Groups every series into Prometheus families, named as the relay names them (the client's
 * prometheus module): counters `…_total`, a `seconds` or `bytes` unit in the name. A series
 * whose family name a series of another type has taken (the first type wins), or two of whose
 * labels sanitize alike, is left out and counted.
 */
export function families(values: Iterable<ValueSeries>, histograms: Iterable<HistogramSeries>, info: (name: string) => NameInfo | undefined): Families {
  const byName = new Map<string, Family>();
  let hidden = 0;
  const add = (name: string, kind: MetricKind, labels: Readonly<Record<string, string>>, member: Omit<Member, 'labels' | 'pairs'>): void => {
    const meta = info(name);
    const unit = meta?.unit;
    const family = familyName(name, kind, unit);
    let f = byName.get(family);
    // Every family has HELP (promtool's lint asks for it): the registered description, or a word that there was none.
    const help = meta?.description ?? `${name} (no description registered)`;
    if (f === undefined) byName.set(family, (f = { name: family, type: kind, help, unit, members: [] }));
    const pairs = labelPairs(labels, kind === 'histogram');
    if (f.type !== kind || pairs === undefined) {
      hidden++;
      return;
    }
    f.members.push({ pairs, labels: pairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(','), ...member });
  };
  for (const v of values) add(v.name, v.kind, v.labels, { value: v });
  for (const h of histograms) add(h.name, 'histogram', h.labels, { histogram: h.aggregate });
  return { families: [...byName.values()], hidden };
}

export type TextFormat = Exclude<Format, 'protobuf'>;

const WORD = 2 ** 32;

/** A counter's total as exact text (past 2^53 a double would round it). */
function total(v: ValueSeries): string {
  return v.hi < 2 ** 21 ? String(v.hi * WORD + v.lo) : ((BigInt(v.hi) << 32n) | BigInt(v.lo)).toString();
}

/** OpenMetrics escapes `"` in HELP too. */
const omHelp = (s: string): string => escapeLabelValue(s);

/** `{labels}` with `extra` appended (e.g. `le="0.5"`), or nothing. */
function braces(labels: string, extra?: string): string {
  const all = extra === undefined ? labels : labels === '' ? extra : `${labels},${extra}`;
  return all === '' ? '' : `{${all}}`;
}

/**
 * The text of `fams`, as chunks of about 64 KiB made as they are pulled (the caller yields to
 * the event loop between them). `self` comes first: the exporter's own figures.
 */
export function* renderText(fams: readonly Family[], format: TextFormat): Generator<Buffer, void, undefined> {
  const out = new TextChunks();
  const om = format === 'openmetrics';
  let chunk: Buffer | undefined;
  for (const f of fams) {
    // OpenMetrics names a counter's family without `_total`, and its sample with it.
    const family = om && f.type === 'counter' ? f.name.slice(0, -'_total'.length) : f.name;
    let head = '';
    head += `# HELP ${family} ${om ? omHelp(f.help) : escapeHelp(f.help)}\n`;
    head += `# TYPE ${family} ${f.type}\n`;
    if (om && f.unit !== undefined && family.endsWith(`_${f.unit}`)) head += `# UNIT ${family} ${f.unit}\n`;
    if ((chunk = out.add(head)) !== undefined) yield chunk;
    for (const m of f.members) {
      let text: string;
      if (m.value !== undefined) {
        text = `${f.name}${braces(m.labels)} ${m.value.kind === 'counter' ? total(m.value) : formatValue(m.value.lo)}\n`;
      } else {
        const h = m.histogram!;
        const cumulative = h.cumulative();
        text = '';
        for (let i = 0; i < cumulative.length; i++) {
          const le = i < h.bounds.length ? formatValue(h.bounds[i]!) : '+Inf';
          text += `${f.name}_bucket${braces(m.labels, `le="${le}"`)} ${cumulative[i]}\n`;
        }
        text += `${f.name}_sum${braces(m.labels)} ${formatValue(h.sum)}\n${f.name}_count${braces(m.labels)} ${h.count}\n`;
      }
      if ((chunk = out.add(text)) !== undefined) yield chunk;
    }
  }
  if (om) out.add('# EOF\n');
  if ((chunk = out.flush()) !== undefined) yield chunk;
}

/** A series of `f` as the protobuf format takes it. */
function member(m: Member): FamilyMember {
  if (m.histogram !== undefined) return { labels: m.pairs, histogram: m.histogram.data() };
  const v = m.value!;
  return v.kind === 'counter' ? { labels: m.pairs, counter: v.hi * WORD + v.lo } : { labels: m.pairs, gauge: v.lo };
}

/** `fams` as length-delimited `MetricFamily` messages, in chunks made as they are pulled. */
export function renderProtobuf(fams: readonly Family[]): Generator<Buffer, void, undefined> {
  return protobufChunks(fams.map((f) => ({ name: f.name, type: f.type, help: f.help, members: members(f) })));
}

/** `f`'s members, each read as the family is encoded (not all of them before the first chunk). */
function* members(f: Family): Generator<FamilyMember> {
  for (const m of f.members) yield member(m);
}
