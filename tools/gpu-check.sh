#!/usr/bin/env bash
# One command that proves the CUDA backend on a GPU machine:
#   1. builds with CUDA (sm_80 + sm_90) into $BUILD_DIR (default build-gpu),
#   2. runs every gpu-labelled test (each CUDA kernel against its CPU twin); a test that
#      skips here, where a GPU is present, counts as a failure,
#   3. runs the kernel benchmarks (decode attention and RMSNorm bandwidth as a fraction of
#      measured copy bandwidth; GEMM TFLOP/s against cuBLAS's own bf16 GEMM),
#   4. end to end on the GPU: `strata serve --device cuda` on builtin:tiny answering a
#      completion, then `strata generate` on builtin:llama-110m with fp32 weights, greedy:
#      the token ids with --device cuda must equal those with --device cpu for the first
#      $AGREE_TOKENS (default 16) of 32 — the GPU sums in another order (attention, cuBLAS),
#      so a near-tie may flip a later token, but not within the first few on fp32 — and the
#      CUDA-graph decode must give exactly the ids of the eager one (--no-cuda-graphs):
#      same kernels, same shapes;
#   5. a multi-GPU worker group: with N > 1 visible GPUs, `strata serve --device cuda --tp N`
#      (one GPU per rank, NCCL all-reduce) must answer a greedy completion with the text
#      one GPU gives for its first $AGREE_TOKENS tokens; skipped (not failed) with one GPU;
# then prints one summary table. Exit status 0 only if every step passed.
#
# Usage: tools/gpu-check.sh [--skip-build]   (env: BUILD_DIR, CUDA_ARCHS, JOBS, PORT, AGREE_TOKENS)
set -uo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${BUILD_DIR:-$root/build-gpu}"
archs="${CUDA_ARCHS:-80;90}"
jobs="${JOBS:-$(nproc)}"
port="${PORT:-18431}"
agree="${AGREE_TOKENS:-16}"
log_dir="$build/gpu-check-logs"
declare -a rows=()
failed=0

row() { rows+=("$1|$2|$3"); }  # step | result | detail
fail() { failed=1; row "$1" "FAIL" "$2"; }

mkdir -p "$log_dir" 2>/dev/null || { mkdir -p "$build" && mkdir -p "$log_dir"; }

echo "== device"
if command -v nvidia-smi >/dev/null && nvidia-smi -L >"$log_dir/device.txt" 2>&1; then
  device="$(head -1 "$log_dir/device.txt")"
  row "device" "ok" "$device"
else
  fail "device" "nvidia-smi found no GPU"
fi

if [[ "${1:-}" != "--skip-build" ]]; then
  echo "== build (CUDA archs $archs) into $build"
  start=$(date +%s)
  if cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DSTRATA_CUDA=ON \
       "-DCMAKE_CUDA_ARCHITECTURES=$archs" >"$log_dir/configure.log" 2>&1 &&
     cmake --build "$build" -j "$jobs" >"$log_dir/build.log" 2>&1; then
    row "build" "ok" "$(( $(date +%s) - start )) s"
  else
    fail "build" "see $log_dir/build.log"; tail -30 "$log_dir/build.log"
  fi
fi

echo "== gpu tests"
ctest --test-dir "$build" -L gpu --output-on-failure >"$log_dir/gpu-tests.log" 2>&1
total=$(grep -oE "out of [0-9]+" "$log_dir/gpu-tests.log" | tail -1 | grep -oE "[0-9]+")
failed_tests=$(grep -oE "[0-9]+ tests failed" "$log_dir/gpu-tests.log" | grep -oE "^[0-9]+")
skipped=$(grep -c "(Skipped)" "$log_dir/gpu-tests.log")
total=${total:-0}; failed_tests=${failed_tests:-0}
passed=$(( total - failed_tests - skipped ))
detail="$passed passed, $skipped skipped, $failed_tests failed of $total"
if [[ $total -gt 0 && $failed_tests -eq 0 && $skipped -eq 0 ]]; then
  row "gpu tests" "ok" "$detail"
else
  fail "gpu tests" "$detail (see $log_dir/gpu-tests.log)"
  grep -E "Failed|Skipped|Expected|Which is|error" "$log_dir/gpu-tests.log" | head -20
fi

echo "== kernel benchmarks"
if "$build/bin/bench_gpu_kernels" >"$log_dir/bench.log" 2>&1 && grep -q '^BENCH|' "$log_dir/bench.log"; then
  row "benchmarks" "ok" "$(grep '^device:' "$log_dir/bench.log" | cut -d' ' -f2-)"
  while IFS='|' read -r _ name value unit reference fraction; do
    row "  $name" "$value $unit" "fraction $fraction of $reference"
  done < <(grep '^BENCH|' "$log_dir/bench.log")
else
  fail "benchmarks" "see $log_dir/bench.log"
fi

echo "== end-to-end on the GPU"
strata="$build/bin/strata"
"$strata" serve --device cuda --model builtin:tiny --port "$port" >"$log_dir/serve.log" 2>&1 &
serve_pid=$!
ready=0
for _ in $(seq 1 60); do
  if curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1; then ready=1; break; fi
  sleep 1
done
if [[ $ready -eq 1 ]] &&
   curl -fsS "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
     -d '{"model":"builtin:tiny","prompt":"Once upon a time","max_tokens":8,"temperature":0}' \
     >"$log_dir/completion.json" 2>&1 &&
   grep -q '"choices"' "$log_dir/completion.json"; then
  row "strata serve --device cuda" "ok" "builtin:tiny answered /v1/completions"
else
  fail "strata serve --device cuda" "see $log_dir/serve.log"
fi
kill "$serve_pid" 2>/dev/null; wait "$serve_pid" 2>/dev/null

# Greedy ids of one prompt on builtin:llama-110m (fp32 weights) per device setting.
generate_ids() {  # name, extra flags...
  local name=$1; shift
  "$strata" generate --model builtin:llama-110m --dtype fp32 --prompt-ids "1 450 4996 17354 1701" \
    --max-tokens 32 --temperature 0 --ignore-eos --output-ids "$@" \
    >"$log_dir/generate-$name.ids" 2>"$log_dir/generate-$name.log"
}
# How many leading ids two files share.
common_prefix() {
  local -a a b
  read -ra a <"$1"; read -ra b <"$2"
  local n=0
  while [[ $n -lt ${#a[@]} && $n -lt ${#b[@]} && "${a[$n]}" == "${b[$n]}" ]]; do n=$((n + 1)); done
  echo "$n"
}
if generate_ids cpu --device cpu && generate_ids cuda --device cuda &&
   generate_ids cuda-eager --device cuda --no-cuda-graphs; then
  same=$(common_prefix "$log_dir/generate-cpu.ids" "$log_dir/generate-cuda.ids")
  if [[ $same -ge $agree ]]; then
    row "generate cuda vs cpu" "ok" "first $same of 32 greedy ids agree (need $agree)"
  else
    fail "generate cuda vs cpu" "only the first $same greedy ids agree (need $agree); see $log_dir/generate-*.ids"
  fi
  same=$(common_prefix "$log_dir/generate-cuda.ids" "$log_dir/generate-cuda-eager.ids")
  if [[ $same -eq 32 ]]; then
    row "generate graphs vs eager" "ok" "all 32 greedy ids equal"
  else
    fail "generate graphs vs eager" "ids differ from position $same; see $log_dir/generate-*.ids"
  fi
  row "  decode on cuda" "$(grep -oE 'decode [0-9.]+ tokens/s' "$log_dir/generate-cuda.log")" \
      "eager: $(grep -oE 'decode [0-9.]+ tokens/s' "$log_dir/generate-cuda-eager.log")"
else
  fail "strata generate --device cuda" "see $log_dir/generate-*.log"
fi

echo "== multi-GPU worker group (NCCL)"
# Greedy text of one completion from `strata serve` with the given flags, into $log_dir/$name.txt.
serve_text() {  # name, flags...
  local name=$1; shift
  "$strata" serve --model builtin:llama-110m --dtype fp32 --port "$port" "$@" >"$log_dir/$name.log" 2>&1 &
  local pid=$! ok=1
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$port/ready" >/dev/null 2>&1 && { ok=0; break; }
    sleep 1
  done
  [[ $ok -eq 0 ]] && curl -fsS "http://127.0.0.1:$port/v1/completions" -H 'Content-Type: application/json' \
      -d "{\"prompt\":\"Once upon a time\",\"max_tokens\":$agree,\"temperature\":0,\"ignore_eos\":true}" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["choices"][0]["text"], end="")' \
      >"$log_dir/$name.txt" || ok=1
  kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null
  return $ok
}
num_gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
if [[ $num_gpus -lt 2 ]]; then
  row "serve --tp N (NCCL)" "skipped" "$num_gpus GPU visible; needs 2 or more"
else
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  if serve_text tp1 --device cuda && serve_text tpN --device cuda --tp "$num_gpus" &&
     cmp -s "$log_dir/tp1.txt" "$log_dir/tpN.txt"; then
    row "serve --tp $num_gpus (NCCL)" "ok" "same greedy text as one GPU ($agree tokens)"
  else
    fail "serve --tp $num_gpus (NCCL)" "see $log_dir/tp1.* and $log_dir/tpN.*"
  fi
fi

echo
printf '| %-28s | %-18s | %s\n' "step" "result" "detail"
printf '|%s|%s|%s\n' "------------------------------" "--------------------" "--------"
for r in "${rows[@]}"; do
  IFS='|' read -r step result detail <<<"$r"
  printf '| %-28s | %-18s | %s\n' "$step" "$result" "$detail"
done
echo
[[ $failed -eq 0 ]] && echo "gpu-check: all steps passed" || echo "gpu-check: FAILED (logs in $log_dir)"
exit $failed
