#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test (the README's test command).
# Tests that need ../shared model files skip without them, and fail without them under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh "$@"
ctest --test-dir build --output-on-failure --timeout 900 -j "$(nproc)"
