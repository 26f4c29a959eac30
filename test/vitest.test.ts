// The Vitest example (examples/testing/jobs.spec.ts) passes under Vitest, run as a user runs it:
// Vitest transforms the TypeScript itself and loads metrics-exporter-tcp/testing as a package.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT, run } from '../scripts/packaging.js';

test('the Vitest example passes under `vitest run`', async () => {
  const r = await run(process.execPath, [join(ROOT, 'node_modules', 'vitest', 'vitest.mjs'), 'run', 'examples/testing/jobs.spec.ts'], ROOT, 60_000);
  const out = `${r.stdout}\n${r.stderr}`.replace(/\x1b\[[0-9;]*m/g, '');
  assert.equal(r.code, 0, out);
  assert.match(out, /Tests\s+2 passed \(2\)/);
});
