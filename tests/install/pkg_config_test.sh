#!/usr/bin/env bash
# Installs the build into a scratch prefix, then compiles the consumer's main.cpp with plain
# g++ and the flags pkg-config gives for factstr, and runs it. The libraries are static, so
# the link takes `pkg-config --static --libs` (their own dependencies are private).
# Arguments: build dir, consumer source dir, CMAKE_INSTALL_LIBDIR, pkg-config program.
set -euo pipefail
build_dir="$1"; source_dir="$2"; libdir="$3"; pkg_config="$4"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build_dir" --prefix "$scratch/prefix" >/dev/null
export PKG_CONFIG_PATH="$scratch/prefix/$libdir/pkgconfig"
"$pkg_config" --exists --print-errors factstr
cflags="$("$pkg_config" --cflags factstr)"
libs="$("$pkg_config" --static --libs factstr)"
echo "cflags: $cflags"
echo "libs: $libs"
# Word splitting of the flags is intended.
# shellcheck disable=SC2086
"${CXX:-g++}" -std=c++20 $cflags "$source_dir/main.cpp" $libs -o "$scratch/consumer"
"$scratch/consumer"
