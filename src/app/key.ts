/** Labels of a key: label name → label value, both strings. */
export type Labels = Readonly<Record<string, string>>;

/** A metric key: a name, or a name with labels (the order labels are given in does not matter). */
export type Key = string | { readonly name: string; readonly labels?: Labels };

/** A validated key with labels sorted the way the seed's BTreeMap orders them (UTF-8 bytes). */
export interface NormalKey {
  readonly name: string;
  readonly labels: [string, string][];
  /** One string per distinct key, used to give equal keys the same id. */
  readonly canonical: string;
}

/** Limits that keep every frame small; documented in the README. */
export const MAX_NAME_LENGTH = 1024;
export const MAX_LABEL_LENGTH = 1024;
export const MAX_LABELS = 64;

function byUtf8(a: [string, string], b: [string, string]): number {
  return Buffer.compare(Buffer.from(a[0]), Buffer.from(b[0]));
}

function checkText(what: string, value: unknown, max: number): string {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string, got ${typeof value}`);
  if (value.length === 0) throw new TypeError(`${what} must not be empty`);
  if (value.length > max) throw new RangeError(`${what} is longer than ${max} characters`);
  return value;
}

/**
 * Validates a key and puts its labels in wire order.
 * @throws TypeError for an empty or non-string name, a non-string label value or an empty
 *   label name; RangeError for strings over the limits or more than {@link MAX_LABELS} labels.
 */
export function normalizeKey(key: unknown): NormalKey {
  if (typeof key === 'string') {
    const name = checkText('metric name', key, MAX_NAME_LENGTH);
    return { name, labels: [], canonical: JSON.stringify([name]) };
  }
  if (typeof key !== 'object' || key === null) {
    throw new TypeError('a key must be a metric name or { name, labels }');
  }
  const k = key as { name?: unknown; labels?: unknown };
  const name = checkText('metric name', k.name, MAX_NAME_LENGTH);
  if (k.labels === undefined) return { name, labels: [], canonical: JSON.stringify([name]) };
  if (typeof k.labels !== 'object' || k.labels === null || Array.isArray(k.labels)) {
    throw new TypeError('labels must be an object of string values');
  }
  const labels: [string, string][] = [];
  for (const [label, value] of Object.entries(k.labels)) {
    checkText('label name', label, MAX_LABEL_LENGTH);
    if (typeof value !== 'string') {
      throw new TypeError(`label ${JSON.stringify(label)} must have a string value, got ${typeof value}`);
    }
    if (value.length > MAX_LABEL_LENGTH) {
      throw new RangeError(`label ${JSON.stringify(label)} has a value longer than ${MAX_LABEL_LENGTH} characters`);
    }
    labels.push([label, value]);
  }
  if (labels.length > MAX_LABELS) throw new RangeError(`a key may have at most ${MAX_LABELS} labels`);
  labels.sort(byUtf8);
  // No labels is the bare name: one key, however it is written.
  return { name, labels, canonical: JSON.stringify(labels.length === 0 ? [name] : [name, labels]) };
}
