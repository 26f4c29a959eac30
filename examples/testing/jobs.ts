// The code under test of the testing examples: a job runner that records through the global
// functions, with handles made at module level (when this module is imported, before any
// recorder is installed).
import { counter, describeCounter, describeHistogram, gauge, histogram } from 'metrics-exporter-tcp';

const labels = { queue: 'default' };
const processed = counter({ name: 'jobs_processed', labels });
const failed = counter({ name: 'jobs_failed', labels });
const running = gauge({ name: 'jobs_running', labels });
const duration = histogram({ name: 'job_duration', labels });
describeCounter('jobs_processed', 'count', 'Jobs that completed');
describeHistogram('job_duration', 'seconds', 'How long a job ran');

/** Runs `job`, counting it as processed or failed, and recording how long it ran. */
export async function runJob(job: () => Promise<void>): Promise<void> {
  const start = performance.now();
  running.increment(1);
  try {
    await job();
    processed.increment();
  } catch (err) {
    failed.increment();
    throw err;
  } finally {
    running.decrement(1);
    duration.record((performance.now() - start) / 1000);
  }
}
