#!/usr/bin/env node
'use strict';
// `npm install` step of @factstr/factstr-node.
//
// - In a factstr-cpp checkout (bindings/node with the C++ sources two levels up), builds the
//   addon with cmake-js into build/Release/factstr.node (one compile job unless
//   CMAKE_BUILD_PARALLEL_LEVEL says otherwise; needs the Debian -dev packages of the
//   library, see the repository README).
// - In an installed package (npm pack output), the addon was built before packing and is
//   used as it is.
// In a checkout the build is incremental: cmake rebuilds what changed.

const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const packageDir = path.resolve(__dirname, '..');
const addon = path.join(packageDir, 'build', 'Release', 'factstr.node');
const sourceTree = path.resolve(packageDir, '..', '..');

const inCheckout = fs.existsSync(path.join(sourceTree, 'store', 'include', 'factstr', 'store.hpp'));

if (!inCheckout) {
  if (fs.existsSync(addon)) process.exit(0);
  console.error(
    '@factstr/factstr-node: this package carries no prebuilt addon and no C++ sources. ' +
      'Install a package packed from a factstr-cpp checkout (npm pack in bindings/node after npm run build).',
  );
  process.exit(1);
}
const cmakeJs = require.resolve('cmake-js/bin/cmake-js', { paths: [packageDir] });
const jobs = process.env.CMAKE_BUILD_PARALLEL_LEVEL || '1';
const result = spawnSync(process.execPath, [cmakeJs, 'build', '--parallel', jobs], {
  cwd: packageDir,
  // The build log goes to stderr: `npm pack --json` (prepack) keeps a clean stdout.
  stdio: ['inherit', 2, 'inherit'],
  env: { ...process.env, CMAKE_BUILD_PARALLEL_LEVEL: jobs },
});
if (result.error) throw result.error;
process.exit(result.status === null ? 1 : result.status);
