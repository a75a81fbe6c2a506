#!/usr/bin/env bash
# The verification lanes .ci/run runs after the ordinary tests (each can run alone):
#   asan  clang ASan + UBSan build (build-asan/): the unit, model and e2e tests under it
#   fuzz  every libFuzzer target of that build for a fixed number of inputs (scripts/fuzz.sh)
#   tsan  clang TSan build (build-tsan/) of the router, dispatcher, transport and engine loop:
#         their tests, and e2e tests whose router and worker processes run under TSan
#   bash scripts/test-sanitizers.sh [asan|fuzz|tsan ...]   (default: all three)
# Tests left out of the sanitizer lanes are those that assert a deadline, a rate or a memory
# bound (the sanitizers slow everything 2-10x, ASan's shadow memory inflates RSS): the
# ordinary lane runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
lanes=("$@")
[ ${#lanes[@]} -gt 0 ] || lanes=(asan fuzz tsan)
jobs="$(nproc)"
supp="$PWD/tests/sanitizers"
timing_bound='BenchFakeServer|e2e_admission|e2e_overload|e2e_load|e2e_soak_short|e2e_parallel|e2e_bench_other_server|e2e_drain|e2e_body_memory|e2e_multihost|e2e_front_door_load'
# The OpenMP runtime is not instrumented: one OpenMP thread keeps it out of the reports, and
# the kernels are the same code either way. Only the tests get it (nproc obeys it too, and
# the builds would run one job at a time).
single_omp=(env OMP_NUM_THREADS=1)

asan_lane() {
  bash scripts/build-sanitizers.sh asan
  "${single_omp[@]}" ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1" \
  LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp" \
  STRATA_BINARY_DIR="$PWD/build-asan" \
    ctest --test-dir build-asan --output-on-failure --timeout 1200 -j "$jobs" \
      -L 'unit|model|e2e|setup' -E "$timing_bound"
}

fuzz_lane() {
  [ -s build-asan/fuzz/targets.tsv ] || bash scripts/build-sanitizers.sh asan
  "${single_omp[@]}" FUZZ_RUNS="${FUZZ_RUNS:-20000}" bash scripts/fuzz.sh 0 build-asan
}

tsan_lane() {
  local dir=build-tsan
  local tests=(dispatcher_test transport_auth_test transport_e2e_test router_api_test router_scheduling_test
               scheduler_test step_inputs_test)
  bash scripts/build-sanitizers.sh tsan --target "${tests[@]}" strata strata-router strata-worker
  export TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
  # CTest knows the gtest cases as Suite.Case: select the suites of the binaries built here,
  # and e2e tests whose router, dispatcher and engine loop run as the TSan-built processes.
  local suites=()
  for t in "${tests[@]}"; do
    mapfile -t -O "${#suites[@]}" suites < <("$dir/bin/$t" --gtest_list_tests | sed -n 's/^\([^ ][^.]*\)\..*/\1/p')
  done
  local pattern
  pattern="^(($(IFS='|'; echo "${suites[*]}"))\\..*|e2e_router_path|e2e_disconnect|e2e_bad_input|e2e_worker_auth|e2e_front_door)\$"
  "${single_omp[@]}" STRATA_BINARY_DIR="$PWD/$dir" ctest --test-dir "$dir" --output-on-failure --timeout 1200 \
    -j "$jobs" -R "$pattern" -E "$timing_bound"
}

for lane in "${lanes[@]}"; do
  lane_start=$SECONDS
  case "$lane" in
    asan) asan_lane ;;
    fuzz) fuzz_lane ;;
    tsan) tsan_lane ;;
    *) echo "test-sanitizers: unknown lane '$lane' (asan, fuzz or tsan)" >&2; exit 2 ;;
  esac
  echo "test-sanitizers: $lane lane done in $((SECONDS - lane_start)) s"
done
