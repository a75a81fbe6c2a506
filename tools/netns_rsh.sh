#!/usr/bin/env bash
# Open MPI's `plm_rsh_agent` for a cluster of network namespaces (tools/netns_cluster.py):
# called like ssh, `netns_rsh.sh [ssh options] HOST COMMAND...`, it runs COMMAND inside the
# namespace that stands for HOST. STRATA_NETNS_HOSTS maps addresses to namespaces:
#   STRATA_NETNS_HOSTS=10.99.0.2=strata-h1,10.99.0.3=strata-h2
set -euo pipefail
while [ $# -gt 0 ] && [ "${1#-}" != "$1" ]; do
  case "$1" in
    -o|-p|-l|-i) shift 2 ;;  # ssh options that take a value; nothing to do without ssh
    *) shift ;;
  esac
done
[ $# -ge 2 ] || { echo "netns_rsh: usage: netns_rsh.sh HOST COMMAND..." >&2; exit 2; }
host="$1"; shift
namespace=""
IFS=',' read -ra pairs <<< "${STRATA_NETNS_HOSTS:-}"
for pair in "${pairs[@]}"; do
  [ "${pair%%=*}" = "$host" ] && namespace="${pair#*=}"
done
[ -n "$namespace" ] || { echo "netns_rsh: host $host is not in STRATA_NETNS_HOSTS ($STRATA_NETNS_HOSTS)" >&2; exit 255; }
# ssh hands its arguments to the remote shell as one command line; so does this.
exec ip netns exec "$namespace" /bin/sh -c "$*"
