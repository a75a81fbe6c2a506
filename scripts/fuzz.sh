#!/usr/bin/env bash
# Runs every libFuzzer target of the verification build (scripts/build-sanitizers.sh) for a
# bounded time each, starting from its seeds (tests/fuzz/CMakeLists.txt defines them; the
# build lists them in fuzz/targets.tsv) and growing a corpus kept in <build>/fuzz/corpus.
# Prints executions, coverage and corpus size per target; exits non-zero on any crash, whose
# input is left in <build>/fuzz/crashes/<target>/ — copy it into tests/fuzz/regressions/<target>/
# so the replay tests keep it.
#   bash scripts/fuzz.sh [seconds per target, default 60] [build dir, default build-asan]
# FUZZ_RUNS=N runs N inputs per target from a fixed seed instead of a time: the same inputs
# every time, which is what CI wants (a red CI must mean a real, reproducible crash).
# FUZZ_MAX_LEN caps input size (default 64 KiB). FUZZ_TARGETS (an extended regex) picks
# targets by name, e.g. to run two at once on two cores.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"
build="${2:-build-asan}"
manifest="$build/fuzz/targets.tsv"
[ -s "$manifest" ] || { echo "fuzz: $manifest is missing; run scripts/build-sanitizers.sh first" >&2; exit 2; }
# The seeds some targets read are written by the tests' setup steps; the lock lets two runs
# start at once.
flock "$build/fuzz/setup.lock" ctest --test-dir "$build" -L setup -j "$(nproc)" >/dev/null
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
status=0
printf '| target | seconds | executions | exec/s | coverage (edges) | corpus | crashes |\n|---|---|---|---|---|---|---|\n'
while IFS=$'\t' read -r target dict seeds; do
  [[ "$target" =~ ^(${FUZZ_TARGETS:-.*})$ ]] || continue
  corpus="$build/fuzz/corpus/$target" crashes="$build/fuzz/crashes/$target"
  mkdir -p "$corpus" "$crashes"
  # Inputs past 64 KiB only make each run slower (the megabyte model seeds ran ~100/s): the
  # small complete seeds cover the whole load, and larger ones are cut to their headers.
  args=(-rss_limit_mb=4096 -timeout=20 -max_len="${FUZZ_MAX_LEN:-65536}" -print_final_stats=1
        -artifact_prefix="$crashes/")
  if [ -n "${FUZZ_RUNS:-}" ]; then
    args+=(-runs="$FUZZ_RUNS" -seed=1)
  else
    args+=(-max_total_time="$seconds")
  fi
  [ "$dict" != "-" ] && args+=(-dict="$dict")
  read -r -a seed_dirs <<<"$seeds"
  existing=()
  for s in "${seed_dirs[@]}"; do
    if [ -d "$s" ]; then existing+=("$s"); elif [ -f "$s" ]; then cp "$s" "$corpus/"; fi  # libFuzzer takes directories
  done
  log="$build/fuzz/$target.log"
  start=$SECONDS
  if ! "$build/bin/$target" "${args[@]}" "$corpus" "${existing[@]}" >"$log" 2>&1; then status=1; fi
  execs=$(grep -oE 'stat::number_of_executed_units: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  rate=$(grep -oE 'stat::average_exec_per_sec: [0-9]+' "$log" | grep -oE '[0-9]+$' || echo 0)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | grep -oE '[0-9]+' || echo 0)
  found=$(find "$crashes" -type f | wc -l)
  elapsed=$((SECONDS - start))
  # libFuzzer's own rate reads 0 on runs that end within its first seconds.
  [ "$rate" = 0 ] && [ "$elapsed" -gt 0 ] && rate=$((execs / elapsed))
  printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$target" "$elapsed" "$execs" "$rate" "$cov" \
    "$(find "$corpus" -type f | wc -l)" "$found"
  if [ "$found" -gt 0 ]; then status=1; tail -n 30 "$log" >&2; fi
done <"$manifest"
exit "$status"
