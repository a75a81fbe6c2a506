#!/usr/bin/env bash
# Soak test (tools/soak.py): mixed traffic against a router with two worker groups, one
# killed and restarted every few minutes; fails on an unexplained failed request or on
# RSS / fd / KV-block growth. Default 30 minutes; CI's short run:
#   bash tools/soak.sh --minutes 2 --kill-every-s 45 --sample-every-s 15
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 tools/soak.py "$@"
