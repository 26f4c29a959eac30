import type { Attributes } from '@opentelemetry/api';
import { RefusedHandle } from '../app/handles.js';
import type { Labels } from '../app/key.js';
import { labelValue, toLabels } from './attributes.js';

/** One attribute set of an instrument: its handle, and what a counter carries between calls. */
export class Series<H> {
  /** Counters: the part of the running sum below 1 that is not sent yet, in [0, 1). */
  fraction = 0;
  /** Observable counters: the last cumulative value observed (the difference is sent). */
  observed = 0;
  /** The last attributes object that found this series through its content (see SeriesCache). */
  seen: object | undefined;

  constructor(readonly handle: H) {}
}

/**
 * A node of the content trie: one attribute (key, then value) per level, in the order given.
 * The first key seen at a node has its values in `values`, found by comparing the key (keys
 * from `for…in` are internalized strings, so that is a pointer comparison): objects with their
 * keys in one order, the usual case, need one Map lookup per attribute. Other keys at the same
 * level go in `others`.
 */
interface Node<H> {
  series: Series<H> | undefined;
  key: string | undefined;
  values: Map<string, Node<H>> | undefined;
  others: Map<string, Map<string, Node<H>>> | undefined;
}

const newNode = <H>(): Node<H> => ({ series: undefined, key: undefined, values: undefined, others: undefined });

/** The values of `key` at `node`, made if `grow` and missing. */
function valuesOf<H>(node: Node<H>, key: string, grow: boolean): Map<string, Node<H>> | undefined {
  if (node.key === key) return node.values;
  let values = node.others?.get(key);
  if (values === undefined && grow) {
    values = new Map();
    if (node.key === undefined) {
      node.key = key;
      node.values = values;
    } else (node.others ??= new Map()).set(key, values);
  }
  return values;
}

/** What the last-call cache starts with: no attributes object is this one. */
const NONE = Object.freeze({});

/**
 * Whether `for…in` over `attributes` may meet inherited keys, which must be skipped (only own
 * keys are attributes). A plain object literal inherits none, so its walk skips the
 * `Object.hasOwn` check (about 8 ns per attribute). (An enumerable property added to
 * `Object.prototype` itself, a bug in any app, is not accounted for.)
 */
function ownOnly(attributes: object): boolean {
  const proto: unknown = Object.getPrototypeOf(attributes);
  return proto !== Object.prototype && proto !== null;
}

/** Content paths kept per series on average (one per order its attributes came in). */
const PATHS_PER_SERIES = 4;

/**
 * Finds the series of an attribute set, fast, for one instrument.
 *
 * How a call finds its series:
 * 1. The attributes object of the previous call found in step 2, compared by identity: a
 *    caller that reuses one object pays one comparison.
 * 2. A WeakMap by attributes object: callers that keep a few objects (one per route, say) pay
 *    one lookup and allocate nothing. An entry lives as long as its object. Objects get an
 *    entry when their content is new (step 4) or when they come back through step 3 a second
 *    time in a row for their series; a new object per call gets none, since a WeakMap insert
 *    (about 250 ns here, and work for the GC) costs more than step 3. Like key objects elsewhere
 *    in this package, an attributes object must not be changed once it has been used.
 * 3. The content: a trie walked with the object's own attributes in the order they come (per
 *    attribute: its key, then a Map by label value; see `Node`), so a new object with the same
 *    content costs a Map lookup per attribute and no string building. Each order seen gets a
 *    path of its own, up to {@link PATHS_PER_SERIES} per series on average.
 * 4. Else the labels are built and the recording resolves them: equal label sets (whatever
 *    their order) get one key and one handle there, so one `Series` here. The recording's
 *    `maxKeys` bounds the keys; a refused key gets the shared refused handle, which counts
 *    each record in `stats().dropped.invalid` and is never put in the trie, so an instrument
 *    with too many attribute sets does not grow either.
 */
export class SeriesCache<H extends object> {
  private lastAttributes: object = NONE;
  private lastSeries: Series<H> | undefined;
  private plain: Series<H> | undefined;
  private readonly byObject = new WeakMap<object, Series<H>>();
  private readonly root = newNode<H>();
  private paths = 0;
  private readonly byHandle = new Map<H, Series<H>>();
  private invalidSeries: Series<H> | undefined;

  /**
   * @param resolve the handle of the instrument's name with these labels (none: the name alone)
   * @param invalid a handle that counts each record as invalid, for attribute sets the recording
   *   rejects (e.g. a label value longer than 1024 characters); called once
   * @param warn reports such a set (once per instrument)
   */
  constructor(
    private readonly resolve: (labels?: Labels) => H,
    private readonly invalid: () => H,
    private readonly warn: (err: Error) => void,
  ) {}

  get(attributes: Attributes | undefined): Series<H> {
    if (attributes === this.lastAttributes) return this.lastSeries!;
    if (typeof attributes !== 'object' || attributes === null) return (this.plain ??= this.make(undefined));
    const series = this.byObject.get(attributes);
    // Found by content: most likely a new object per call, not worth remembering here (the
    // store costs a write barrier); a reused one comes back through the WeakMap.
    if (series === undefined) return this.byContent(attributes);
    this.lastAttributes = attributes;
    this.lastSeries = series;
    return series;
  }

  private byContent(attributes: Attributes): Series<H> {
    const series = this.walk(attributes, false)?.series;
    if (series === undefined) return this.resolveNew(attributes);
    // Seen again through its content, with no other object of this content in between: a
    // reused object, worth a WeakMap entry. (A new object per call is not put in the WeakMap:
    // inserting costs more than the walk.)
    if (series.seen === attributes) this.byObject.set(attributes, series);
    else series.seen = attributes;
    return series;
  }

  private resolveNew(attributes: Attributes): Series<H> {
    // No labels resolve to the bare name's key and handle (the recording makes them one key),
    // so to the same series as no attributes at all.
    const series = this.make(toLabels(attributes));
    this.byObject.set(attributes, series);
    if (series.handle instanceof RefusedHandle || series === this.invalidSeries) return series;
    if (this.paths >= PATHS_PER_SERIES * this.byHandle.size) return series;
    this.walk(attributes, true)!.series = series;
    this.paths++;
    return series;
  }

  /**
   * The trie node at the end of the attributes' path, taken in their key order. With `grow`,
   * missing nodes are made; without, a missing one ends the walk with undefined.
   */
  private walk(attributes: Attributes, grow: boolean): Node<H> | undefined {
    let node = this.root;
    const own = ownOnly(attributes);
    for (const key in attributes) {
      if (own && !Object.hasOwn(attributes, key)) continue;
      const value = labelValue(attributes[key]);
      if (value === undefined) continue;
      const values = valuesOf(node, key, grow);
      let next = values?.get(value);
      if (next === undefined) {
        if (!grow) return undefined;
        values!.set(value, (next = newNode())); // growing: valuesOf made the Map
      }
      node = next;
    }
    return node;
  }

  private make(labels: Labels | undefined): Series<H> {
    let handle: H;
    try {
      handle = this.resolve(labels);
    } catch (err) {
      if (this.invalidSeries === undefined) {
        this.warn(err as Error);
        this.invalidSeries = new Series(this.invalid());
      }
      return this.invalidSeries;
    }
    let series = this.byHandle.get(handle);
    if (series === undefined) {
      series = new Series(handle);
      // The refused handle is one object for every refused key: it gets one series, not kept.
      if (!(handle instanceof RefusedHandle)) this.byHandle.set(handle, series);
    }
    return series;
  }
}
