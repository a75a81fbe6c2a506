#!/usr/bin/env bash
# Configures and builds the verification build: clang with ASan + UBSan and libFuzzer's
# coverage hooks, CUDA off, into build-asan/ (or $1). Its tests are the ordinary ones run
# under the sanitizers (scripts/test-sanitizers.sh); its fuzz targets are scripts/fuzz.sh's.
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${1:-build-asan}"
generator=()
command -v ninja >/dev/null && [ ! -f "$dir/Makefile" ] && generator=(-G Ninja)
cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DSTRATA_CUDA=OFF \
  -DSTRATA_SANITIZE=address,undefined -DSTRATA_FUZZ=ON >/dev/null
cmake --build "$dir" -j "$(nproc)"
