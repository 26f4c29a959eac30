// Asserting metrics with Vitest: `npx vitest run examples/testing/jobs.spec.ts` (npm test runs it).
import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest';
import { captureMetrics, type MetricsCapture } from 'metrics-exporter-tcp/testing';
import { runJob } from './jobs.js';

let cap: MetricsCapture;
beforeAll(async () => {
  cap = await captureMetrics();
});
beforeEach(() => cap.reset());
afterAll(() => cap.close());

const queue = { queue: 'default' };

test('a job that completes is counted, and its duration recorded', async () => {
  await runJob(async () => {});
  expect(cap.value({ name: 'jobs_processed', labels: queue })).toBe(1);
  expect(cap.value({ name: 'jobs_failed', labels: queue })).toBeUndefined();
  expect(cap.value({ name: 'job_duration', labels: queue }, 'histogram')).toMatchObject({ count: 1 });
});

test('a job that fails is counted as failed', async () => {
  await expect(runJob(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  expect(cap.snapshot()).toEqual([
    expect.objectContaining({ name: 'job_duration', kind: 'histogram', count: 1, unit: 'seconds' }),
    { name: 'jobs_failed', labels: queue, kind: 'counter', value: 1 },
    { name: 'jobs_running', labels: queue, kind: 'gauge', value: 0 },
  ]);
});
