#!/usr/bin/env bash
# Load time and peak resident memory of one GGUF file in strata and in llama.cpp, alternating
# the two so both see the same page cache and machine state (docs/benchmarks.md, "GGUF
# issue"). Each side loads the file and generates one token from a one-token prompt on 2
# threads; /usr/bin/time -v gives wall time and maximum RSS, and each program's own load
# figure is quoted (strata: "loaded in", llama.cpp: llama_perf "load time"). The first pass
# over each file is discarded so both read it from the page cache.
#   LLAMA_BIN=/work/baselines/llama.cpp/build/bin bash tools/baselines/gguf_load.sh FILE.gguf... [-- rounds]
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${LLAMA_BIN:?set LLAMA_BIN to the build/bin of llama.cpp}"
files=()
while [[ $# -gt 0 && "$1" != "--" ]]; do files+=("$1"); shift; done
rounds="${2:-2}"

# "wall_s max_rss_MiB own_load_figure" for one command.
measure() {
  local log pattern="$1"
  shift
  log=$(mktemp)
  /usr/bin/time -v "$@" >/dev/null 2>"$log" || { tail -n 20 "$log" >&2; rm -f "$log"; return 1; }
  local wall rss own
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {split($2, t, ":"); print t[1] * 60 + t[2]}' "$log")
  rss=$(awk -F': ' '/Maximum resident set size/ {printf "%.0f", $2 / 1024}' "$log")
  own=$(grep -oE "$pattern" "$log" | head -n 1 || true)
  rm -f "$log"
  echo "${wall}s ${rss}MiB (${own})"
}

strata() { measure 'loaded in [0-9.]+ s' build/bin/strata generate --model "$1" --prompt-ids 1 --max-tokens 1 --threads 2; }
llama() {
  measure 'load time = +[0-9.]+ ms' "$LLAMA_BIN/llama-cli" -m "$1" -p a -n 1 -t 2 -no-cnv --no-warmup
}

for f in "${files[@]}"; do strata "$f" >/dev/null; llama "$f" >/dev/null; done  # warm the page cache
for round in $(seq "$rounds"); do
  echo "## round $round, $(date -u +%H:%M) UTC, load $(cut -d' ' -f1 /proc/loadavg)"
  for f in "${files[@]}"; do
    echo "$(basename "$f"): llama.cpp $(llama "$f") | strata $(strata "$f")"
  done
done
