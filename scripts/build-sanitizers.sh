#!/usr/bin/env bash
# Configures and builds a verification tree with clang, CUDA off:
#   asan  build-asan/: ASan + UBSan and libFuzzer's coverage hooks (its fuzz targets are
#         scripts/fuzz.sh's)
#   tsan  build-tsan/: ThreadSanitizer
#   bash scripts/build-sanitizers.sh [asan|tsan] [cmake --build arguments, e.g. --target fuzz_wire]
# Both build at -O1 as unity builds, with line tables only: enough for the sanitizers' stack
# traces, and about half the compile time of the ordinary flags on a cold 2-core CI machine.
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-asan}"
case "$kind" in
  asan) dir=build-asan; flags=(-DSTRATA_SANITIZE=address,undefined -DSTRATA_FUZZ=ON) ;;
  tsan) dir=build-tsan; flags=(-DSTRATA_SANITIZE=thread) ;;
  *) echo "build-sanitizers: unknown kind '$kind' (asan or tsan)" >&2; exit 2 ;;
esac
bash scripts/install-deps.sh --sanitizers
generator=()
command -v ninja >/dev/null && [ ! -f "$dir/Makefile" ] && generator=(-G Ninja)
cmake -S . -B "$dir" "${generator[@]}" -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DSTRATA_CUDA=OFF \
  -DCMAKE_C_FLAGS=-gline-tables-only -DCMAKE_CXX_FLAGS=-gline-tables-only \
  -DSTRATA_OPTIMIZE=-O1 -DCMAKE_UNITY_BUILD=ON "${flags[@]}" >/dev/null
cmake --build "$dir" -j "$(nproc)" "${@:2}"
