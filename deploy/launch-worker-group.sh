#!/usr/bin/env bash
# Starts one strata worker group across the hosts of an Open MPI hostfile: tp × pp ranks,
# rank 0 (the driver) connects to the router. Every host needs the same strata build at the
# same path and the model at the same path (each rank reads only its own slices of it).
#
#   deploy/launch-worker-group.sh --hostfile deploy/hostfile.example --tp 2 --pp 2 \
#       --router tcp://router-host:5557 --model /models/TinyLlama-1.1B --group-id g0 \
#       --transport-key-file /secrets/strata-transport.key \
#       [--mpi-interface eth1] [--mpi-port-base 30000] [--mpirun-arg ARG ...] \
#       [-- extra strata-worker flags, e.g. --kv-cache-mb 4096]
#
# --mpi-interface keeps the ranks' own traffic on one network, e.g. a private cluster
# network (Open MPI's TCP transport and its out-of-band channel); by default Open MPI uses
# every interface.
# --mpi-port-base P pins Open MPI's ports for a firewall: daemons and mpirun on P, ranks'
# TCP transport on P+1 … P+100 (by default both take any free port). Open between hosts:
# ssh, P … P+100, and the router's --zmq-endpoint port (tests/e2e/test_multihost.py).
# --mpirun-arg passes one more argument to mpirun, before the program; repeat it for each,
# e.g. how containers reach each other's sshd (deploy/docker/lws-launch.sh does this):
#   --mpirun-arg --mca --mpirun-arg plm_rsh_args --mpirun-arg "-p 2222"
#
# The router must listen on an address the driver host can reach, with the same key file
# (`strata keygen FILE` writes one; only holders of it can register as worker groups):
#   strata-router --zmq-endpoint tcp://0.0.0.0:5557 --model /models/TinyLlama-1.1B \
#       --transport-key-file /secrets/strata-transport.key
set -euo pipefail

usage() { sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
hostfile="" tp=1 pp=1 router="" model="" group="g0" threads=0 interface="" key_file="" port_base=""
mpirun_args=()
strata_worker="$(cd "$(dirname "$0")/.." && pwd)/build/bin/strata-worker"
while [ $# -gt 0 ]; do
  case "$1" in
    --hostfile) hostfile="$2"; shift 2 ;;
    --tp) tp="$2"; shift 2 ;;
    --pp) pp="$2"; shift 2 ;;
    --router) router="$2"; shift 2 ;;
    --model) model="$2"; shift 2 ;;
    --group-id) group="$2"; shift 2 ;;
    --threads) threads="$2"; shift 2 ;;
    --mpi-interface) interface="$2"; shift 2 ;;
    --mpi-port-base) port_base="$2"; shift 2 ;;
    --transport-key-file) key_file="$2"; shift 2 ;;
    --mpirun-arg) mpirun_args+=("$2"); shift 2 ;;
    --strata-worker) strata_worker="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) usage ;;
    *) echo "launch-worker-group: unknown option $1" >&2; usage ;;
  esac
done
[ -n "$hostfile" ] && [ -f "$hostfile" ] || { echo "launch-worker-group: --hostfile FILE is required (see deploy/hostfile.example)" >&2; exit 2; }
[ -n "$router" ] || { echo "launch-worker-group: --router tcp://HOST:PORT is required" >&2; exit 2; }
[ -n "$model" ] || { echo "launch-worker-group: --model PATH is required" >&2; exit 2; }
[ -x "$strata_worker" ] || { echo "launch-worker-group: $strata_worker not found; build strata first or pass --strata-worker" >&2; exit 2; }

ranks=$((tp * pp))
extra=()
[ "$(id -u)" -eq 0 ] && extra+=(--allow-run-as-root)
[ -n "$interface" ] && extra+=(--mca btl_tcp_if_include "$interface" --mca oob_tcp_if_include "$interface")
if [ -n "$port_base" ]; then
  [[ "$port_base" =~ ^[0-9]+$ ]] && [ "$port_base" -ge 1024 ] && [ "$port_base" -le 65435 ] ||
    { echo "launch-worker-group: --mpi-port-base must be a port from 1024 to 65435, not '$port_base'" >&2; exit 2; }
  extra+=(--mca oob_tcp_static_ipv4_ports "$port_base"
          --mca btl_tcp_port_min_v4 "$((port_base + 1))" --mca btl_tcp_port_range_v4 100)
fi
# Forward OpenMP settings only when set (mpirun warns about each unset one).
for var in OMP_NUM_THREADS OMP_WAIT_POLICY; do
  [ -n "${!var:-}" ] && extra+=(-x "$var")
done
worker_flags=()
[ -n "$key_file" ] && worker_flags+=(--transport-key-file "$key_file")
# Consecutive ranks form a pipeline stage's TP group, so fill each host before the next
# (--map-by slot): TP all-reduces then stay inside a host and pipeline sends cross hosts.
exec mpirun --hostfile "$hostfile" -np "$ranks" --map-by slot --bind-to none "${extra[@]}" "${mpirun_args[@]}" \
  "$strata_worker" --tp "$tp" --pp "$pp" --router "$router" --model "$model" \
  --group-id "$group" --threads "$threads" "${worker_flags[@]}" "$@"
