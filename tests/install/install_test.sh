#!/usr/bin/env bash
# Installs the build into a scratch prefix, then configures, builds and runs a separate
# consumer project against it with find_package(factstr).
set -euo pipefail
build_dir="$1"; source_dir="$2"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null
cmake -S "$source_dir" -B "$scratch/build" -G Ninja -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/build" >/dev/null
"$scratch/build/consumer"
