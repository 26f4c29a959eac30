// src/gen/ is what `npm run generate` makes (buf generate from proto/, then the frame kernel's
// WebAssembly from its source): regenerate and compare.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ROOT } from './helpers.js';

test('committed src/gen matches a fresh npm run generate', (t) => {
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
  // The frame kernel's WebAssembly, assembled from its source (`npm run generate` does the same).
  const w = spawnSync(process.execPath, [join(ROOT, 'dist/scripts/gen-wasm.js'), join(out, 'gen')], { encoding: 'utf8' });
  assert.equal(w.status, 0, w.stderr);
  const files = readdirSync(join(out, 'gen')).sort();
  assert.deepEqual(files, readdirSync(join(ROOT, 'src/gen')).sort());
  for (const f of files) {
    assert.equal(readFileSync(join(ROOT, 'src/gen', f), 'utf8'), readFileSync(join(out, 'gen', f), 'utf8'), `src/gen/${f} differs`);
  }
});
