'use strict';
// The README's examples run, and print what the README says they print (timestamps aside;
// lines compared as a set, since independent streams may interleave).
const { test } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { postgresUrl } = require('./helpers');

const packageDir = path.resolve(__dirname, '..');
const readme = fs.readFileSync(path.join(packageDir, 'README.md'), 'utf8');

function normalized(text) {
  return text
    .replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>')
    .trim()
    .split('\n')
    .sort();
}

const marker = /<!-- output: (examples\/[\w.-]+\.js) -->\n```text\n([\s\S]*?)```/g;
const documented = [...readme.matchAll(marker)];

test('the README documents the output of every example', () => {
  const examples = fs.readdirSync(path.join(packageDir, 'examples')).map((f) => `examples/${f}`).sort();
  assert.deepEqual(documented.map((m) => m[1]).sort(), examples);
});

for (const [, example, expected] of documented) {
  const needsPostgres = example.includes('postgres');
  test(`${example} prints what the README shows`, { skip: needsPostgres && postgresUrl === '' && 'set FACTSTR_TEST_POSTGRES_URL' }, () => {
    const result = spawnSync(process.execPath, [example], { cwd: packageDir, encoding: 'utf8', timeout: 30000 });
    assert.equal(result.status, 0, result.stderr);
    assert.deepEqual(normalized(result.stdout), normalized(expected));
  });
}
