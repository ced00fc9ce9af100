'use strict';
// The package as a user gets it: `npm pack`, installed into a scratch project under the name
// @factstr/factstr-node (from the tarball, no registry), required by that name, used on
// memory and SQLite, and the TypeScript sample compiled against the installed declarations
// and run.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const packageDir = path.resolve(__dirname, '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let scratch;
let tarball;
let packedFiles = [];

function run(command, args, cwd) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: 180000 });
  assert.equal(result.error, undefined, `${command} ${args.join(' ')}: ${result.error}`);
  assert.equal(result.status, 0, `${command} ${args.join(' ')} failed:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

before(() => {
  scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'factstr-node-pack-'));
  const packed = JSON.parse(run(npm, ['pack', '--json', '--pack-destination', scratch], packageDir));
  tarball = path.join(scratch, packed[0].filename);
  packedFiles = packed[0].files.map((f) => f.path).sort();
  const app = path.join(scratch, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', version: '1.0.0', private: true }));
  run(npm, ['install', '--no-audit', '--no-fund', `@factstr/factstr-node@file:${tarball}`], app);
});

after(() => {
  if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
});

test('the tarball holds the JavaScript, the declarations, the README and the built addon', () => {
  assert.deepEqual(packedFiles, [
    'README.md',
    'build/Release/factstr.node',
    'index.d.ts',
    'index.js',
    'package.json',
    'scripts/install.js',
  ]);
});

test('the installed package is required as @factstr/factstr-node and works on memory and SQLite', () => {
  const app = path.join(scratch, 'app');
  const installed = JSON.parse(fs.readFileSync(path.join(app, 'node_modules/@factstr/factstr-node/package.json'), 'utf8'));
  assert.equal(installed.name, '@factstr/factstr-node');
  assert.equal(installed.version, '0.5.2');
  const script = `
    const { FactstrMemoryStore, FactstrSqliteStore } = require('@factstr/factstr-node');
    const file = require('node:path').join(process.cwd(), 'scratch.sqlite');
    (async () => {
      const out = [];
      for (const store of [new FactstrMemoryStore(), new FactstrSqliteStore(file)]) {
        const seen = [];
        const live = store.streamAll((events) => { seen.push(events.length); });
        const durable = await store.streamAllDurable({ name: 'p' }, async () => true);
        const appended = store.append([{ event_type: 'item-added', payload: { sku: 'ABC-123', quantity: 1 } }]);
        const query = { filters: [{ event_types: ['item-added'] }] };
        const result = store.query(query);
        const conflict = store.appendIf([{ event_type: 'item-added', payload: {} }], query, 0n);
        const ok = store.appendIf([{ event_type: 'item-added', payload: {} }], query, result.current_context_version);
        while (seen.length < 2) await new Promise((r) => setTimeout(r, 5));
        live.unsubscribe();
        durable.unsubscribe();
        out.push([store.constructor.name, appended.last_sequence_number, result.event_records[0].payload.sku,
                  conflict.conflict.actual_context_version, ok.append_result.first_sequence_number, seen.join('+')].join(' '));
      }
      console.log(out.join('\\n'));
    })();
  `;
  const output = run(process.execPath, ['-e', script], app);
  assert.equal(output.trim(), ['FactstrMemoryStore 1 ABC-123 1 2 1+1', 'FactstrSqliteStore 1 ABC-123 1 2 1+1'].join('\n'));
});

test('the TypeScript sample compiles against the installed declarations and runs', () => {
  const app = path.join(scratch, 'app');
  fs.copyFileSync(path.join(__dirname, 'types', 'sample.ts'), path.join(app, 'sample.ts'));
  fs.writeFileSync(
    path.join(app, 'tsconfig.json'),
    JSON.stringify({
      compilerOptions: {
        target: 'ES2022',
        module: 'commonjs',
        moduleResolution: 'node',
        strict: true,
        outDir: 'out',
        types: ['node'],
        typeRoots: [path.join(packageDir, 'node_modules', '@types')],
      },
      files: ['sample.ts'],
    }),
  );
  run(process.execPath, [path.join(packageDir, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], app);
  const output = run(
    process.execPath,
    ['-e', "require('./out/sample.js').main(require('node:path').join(process.cwd(), 'sample.sqlite')).then((lines) => console.log(JSON.stringify(lines)))"],
    app,
  );
  const lines = JSON.parse(output);
  assert.deepEqual(lines.filter((l) => l.startsWith('appendIf')), ['appendIf 2', 'appendIf 2']);
  assert.deepEqual(lines.filter((l) => l.startsWith('stale')), ['stale 2', 'stale 2']);
  assert.ok(lines.filter((l) => l.startsWith('live')).length >= 2, lines.join(', '));
});
