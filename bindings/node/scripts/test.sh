#!/usr/bin/env bash
# Builds and tests the Node binding; what ctest runs (tests/node/CMakeLists.txt, label "node").
#   scripts/test.sh build   npm ci when node_modules is missing (which builds), else an
#                           incremental build of build/Release/factstr.node
#   scripts/test.sh types   tsc --noEmit on test/types/sample.ts against index.d.ts
#   scripts/test.sh test    node --test test/ (the contract on memory, SQLite and PostgreSQL,
#                           the life cycle, and the npm pack / install test)
#   scripts/test.sh         all three
# One compile job unless CMAKE_BUILD_PARALLEL_LEVEL says otherwise. PostgreSQL tests need
# FACTSTR_TEST_POSTGRES_URL (skipped without it, except with CI=true).
set -euo pipefail
cd "$(dirname "$0")/.."
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-1}"

build() {
  if [ ! -d node_modules ]; then
    npm ci --no-audit --no-fund
  fi
  node scripts/install.js
}

types() {
  node node_modules/typescript/bin/tsc -p test/types/tsconfig.json
  echo "tsc --noEmit: test/types/sample.ts type-checks"
}

run_tests() {
  node --test test/
}

case "${1:-all}" in
  build) build ;;
  types) types ;;
  test) run_tests ;;
  all) build && types && run_tests ;;
  *) echo "usage: scripts/test.sh [build|types|test]" >&2; exit 2 ;;
esac
