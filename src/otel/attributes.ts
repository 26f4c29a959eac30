import type { Attributes } from '@opentelemetry/api';
import type { Labels } from '../app/key.js';

/**
 * The label value of an attribute value: a string as it is, a number or boolean in its string
 * form, an array as JSON. Anything else (undefined, null, objects, which the API does not
 * allow) is left out, as the OpenTelemetry SDK leaves out invalid attributes.
 */
export function labelValue(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return value;
    case 'number':
    case 'boolean':
      return String(value);
    case 'object':
      return Array.isArray(value) ? JSON.stringify(value) : undefined;
    default:
      return undefined;
  }
}

/** The labels of an attribute set: its own enumerable keys, values as {@link labelValue} says. */
export function toLabels(attributes: Attributes): Labels {
  // No prototype: an attribute named __proto__ is a label like any other.
  const labels = Object.create(null) as Record<string, string>;
  for (const key in attributes) {
    if (!Object.hasOwn(attributes, key)) continue;
    const value = labelValue(attributes[key]);
    if (value !== undefined) labels[key] = value;
  }
  return labels;
}
