// The alert rules the README gives (alerts.yml, shipped with the package) are valid, and fire at
// the first loss, which they can only because the relay shows every loss counter at 0 first.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { NO_PROMETHEUS, PROMETHEUS } from './harness.js';

const RULES = fileURLToPath(new URL('../../alerts.yml', import.meta.url));
const README = fileURLToPath(new URL('../../README.md', import.meta.url));
const loss = 'metrics_exporter_tcp_dropped_total{exporter="10.0.0.5:5000",reason="client_queue"}';

test('the README gives alerts.yml as it is', () => {
  assert.ok(readFileSync(README, 'utf8').includes(`\`\`\`yaml\n${readFileSync(RULES, 'utf8')}\`\`\``));
});

test('promtool: the rules are valid; MetricsLost fires at the first loss, and would not if the counter first appeared at its value', { skip: PROMETHEUS ? false : NO_PROMETHEUS }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mtcp-rules-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const check = spawnSync('promtool', ['check', 'rules', RULES], { encoding: 'utf8' });
  assert.equal(check.status, 0, check.stdout + check.stderr);
  const alert = (values: string, fires: boolean) => `  - interval: 1m
    input_series:
      - series: '${loss}'
        values: '${values}'
    alert_rule_test:
      - eval_time: 4m
        alertname: MetricsLost
        exp_alerts:${fires ? `
          - exp_labels: { severity: warning, exporter: '10.0.0.5:5000', reason: client_queue }
            exp_annotations: { summary: '10.0.0.5:5000 lost records (client_queue)' }` : ' []'}
`;
  const tests = join(dir, 'tests.yml');
  // At 0 from the start (the relay now): the first 500 lost fire the alert. First seen at 500 (relay 0.1.0): silence.
  writeFileSync(tests, `rule_files:\n  - ${RULES}\nevaluation_interval: 1m\ntests:\n${alert('0 0 0 500 500', true)}${alert('_ _ _ 500 500', false)}`);
  const run = spawnSync('promtool', ['test', 'rules', tests], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stdout + run.stderr);
});

test('promtool: MetricsBufferNearFull fires when a ring got past three quarters of bufferSize, not below', { skip: PROMETHEUS ? false : NO_PROMETHEUS }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'mtcp-rules-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const exporter = 'exporter="10.0.0.5:5000"';
  const near = (peak: number, fires: boolean) => `  - interval: 1m
    input_series:
      - series: 'metrics_exporter_tcp_ring_peak{${exporter}}'
        values: '0 ${peak} ${peak}'
      - series: 'metrics_exporter_tcp_buffer_size{${exporter}}'
        values: '16384 16384 16384'
    alert_rule_test:
      - eval_time: 2m
        alertname: MetricsBufferNearFull
        exp_alerts:${fires ? `
          - exp_labels: { severity: info, exporter: '10.0.0.5:5000' }
            exp_annotations: { summary: '10.0.0.5:5000 filled ${(peak / 16384) * 100}% of a ring: raise its bufferSize' }` : ' []'}
`;
  const tests = join(dir, 'tests.yml');
  writeFileSync(tests, `rule_files:\n  - ${RULES}\nevaluation_interval: 1m\ntests:\n${near(14_336, true)}${near(12_288, false)}`);
  const run = spawnSync('promtool', ['test', 'rules', tests], { encoding: 'utf8' });
  assert.equal(run.status, 0, run.stdout + run.stderr);
});
