#!/usr/bin/env bash
# Configures and builds the verification build: clang with ASan + UBSan and libFuzzer's
# coverage hooks, CUDA off, into build-asan/ (or $1). Its tests are the ordinary ones run
# under the sanitizers; its fuzz targets are scripts/fuzz.sh's. Arguments after the directory
# go to the build step (e.g. --target fuzz_wire).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build-asan}"
bash scripts/install-deps.sh --sanitizers
generator=()
command -v ninja >/dev/null && [ ! -f "$dir/Makefile" ] && generator=(-G Ninja)
# Line tables only: enough for the sanitizers' stack traces, much cheaper to compile than -g.
cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DSTRATA_CUDA=OFF \
  -DCMAKE_C_FLAGS=-gline-tables-only -DCMAKE_CXX_FLAGS=-gline-tables-only \
  -DSTRATA_SANITIZE=address,undefined -DSTRATA_FUZZ=ON >/dev/null
cmake --build "$dir" -j "$(nproc)" "${@:2}"
