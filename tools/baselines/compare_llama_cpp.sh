#!/usr/bin/env bash
# strata beside llama.cpp on the builtin:llama-1b shape, alternating the two so both see the
# same machine state (docs/benchmarks.md, "Quantization issue"). llama.cpp is a baseline
# built outside the repository: LLAMA_BIN is its build/bin, GGUF_DIR holds
# llama1b-{q8_0,q4_0}.gguf (tools/baselines/random_llama_gguf.py, then its llama-quantize).
#   LLAMA_BIN=/work/baselines/llama.cpp/build/bin GGUF_DIR=/work/baselines/models \
#     bash tools/baselines/compare_llama_cpp.sh [rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${LLAMA_BIN:?set LLAMA_BIN to the build/bin of llama.cpp}" "${GGUF_DIR:?set GGUF_DIR}"
rounds="${1:-2}"
strata() {
  build/bin/bench_model --model builtin:llama-1b --dtype bf16 --threads 2 --prompt-tokens 16 \
    --decode-tokens 32 --prefill-tokens 256 --repeats 2 "$@" 2>/dev/null | grep '^| ' | tail -n 1
}
llama() { "$LLAMA_BIN/llama-bench" -m "$GGUF_DIR/$1" -t 2 -r 2 "${@:2}" -o md | grep '^| llama'; }
for round in $(seq "$rounds"); do
  echo "## round $round, $(date -u +%H:%M) UTC, load $(cut -d' ' -f1 /proc/loadavg)"
  llama llama1b-q8_0.gguf -p 256 -n 0
  llama llama1b-q8_0.gguf -p 0 -n 32
  strata --quantization w8a8
  llama llama1b-q4_0.gguf -p 0 -n 32
  strata --quantization w4a16
  strata
done
