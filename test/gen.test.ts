// src/gen/ is what `buf generate` makes from proto/: regenerate and compare.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers.js';

test('committed src/gen matches a fresh buf generate', (t) => {
  const out = mkdtempSync(join(tmpdir(), 'mtcp-gen-'));
  t.after(() => rmSync(out, { recursive: true, force: true }));
  const template = join(out, 'buf.gen.yaml');
  const original = readFileSync(join(ROOT, 'buf.gen.yaml'), 'utf8');
  assert.match(original, /out: src\/gen/);
  writeFileSync(template, original.replace('out: src/gen', `out: ${join(out, 'gen')}`));
  const r = spawnSync(join(ROOT, 'node_modules/.bin/buf'), ['generate', '--template', template], {
    cwd: ROOT,
    encoding: 'utf8',
    env: { ...process.env, PATH: `${join(ROOT, 'node_modules/.bin')}:${process.env.PATH}` },
  });
  assert.equal(r.status, 0, r.stderr);
  const files = readdirSync(join(out, 'gen')).sort();
  assert.deepEqual(files, readdirSync(join(ROOT, 'src/gen')).sort());
  for (const f of files) {
    assert.equal(readFileSync(join(ROOT, 'src/gen', f), 'utf8'), readFileSync(join(out, 'gen', f), 'utf8'), `src/gen/${f} differs`);
  }
});
