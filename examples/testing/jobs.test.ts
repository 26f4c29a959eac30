// Asserting metrics with node:test: `node --test` runs it (npm test does, from dist/).
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import { captureMetrics, type MetricsCapture } from 'metrics-exporter-tcp/testing';
import { runJob } from './jobs.js';

let cap: MetricsCapture;
before(async () => {
  cap = await captureMetrics(); // one per file: it takes a worker thread a moment to start
});
beforeEach(() => cap.reset()); // each test starts from nothing
after(() => cap.close());

const queue = { queue: 'default' };

test('a job that completes is counted, and its duration recorded', async () => {
  await runJob(async () => {});
  assert.equal(cap.value({ name: 'jobs_processed', labels: queue }), 1);
  assert.equal(cap.value({ name: 'jobs_failed', labels: queue }), undefined); // never incremented since the reset
  assert.equal(cap.value({ name: 'jobs_running', labels: queue }), 0);
  assert.equal(cap.value({ name: 'job_duration', labels: queue }, 'histogram')?.count, 1);
});

test('a job that fails is counted as failed', async () => {
  await assert.rejects(runJob(async () => Promise.reject(new Error('boom'))));
  assert.deepEqual(
    cap.snapshot().map(({ name, kind }) => `${kind} ${name}`),
    ['histogram job_duration', 'counter jobs_failed', 'gauge jobs_running'],
  );
});
