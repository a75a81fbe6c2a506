#!/usr/bin/env bash
# The leader pod of a LeaderWorkerSet group: writes an Open MPI hostfile naming every pod of the
# group, waits until each worker pod's sshd (worker-entrypoint.sh) lets it in, then starts one
# worker group across them with launch-worker-group.sh (mpirun over ssh).
#
#   lws-launch.sh [--print-hostfile] [launch-worker-group.sh options] [-- strata-worker flags]
#
# --print-hostfile prints the hostfile and exits. From LWS: LWS_LEADER_ADDRESS, this pod's DNS
# name NAME-GROUP.SUBDOMAIN.NAMESPACE, and LWS_GROUP_SIZE, the pods in the group counting this
# one; worker i (1 .. size-1) is NAME-GROUP-i.SUBDOMAIN.NAMESPACE, the name LWS gives it.
# From the manifest:
#   STRATA_MODEL, STRATA_ROUTER (tcp://HOST:5557)   required
#   STRATA_TP, STRATA_PP (1)         TP × PP must equal pods × STRATA_SLOTS_PER_POD (1)
#   STRATA_TRANSPORT_KEY_FILE        the router's key file (strata keygen), when it has one
#   STRATA_GROUP_ID                  the group's name at the router (default NAME-GROUP)
#   STRATA_SSH_KEY                   private key (default /etc/strata/ssh/id_ed25519)
#   STRATA_SSH_PORT (2222), STRATA_SSH_WAIT_S (300)
# Ranks in the worker pods see only what mpirun exports to them: NCCL_*, LD_LIBRARY_PATH and
# the variables OMPI_MCA_mca_base_env_list names.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
port="${STRATA_SSH_PORT:-2222}"

die() { echo "lws-launch: $*" >&2; exit 2; }
need() { [ -n "${!1:-}" ] || die "$1 is not set ($2)"; }
positive() { [[ "${!1}" =~ ^[1-9][0-9]*$ ]] || die "$1 must be a positive integer; given: '${!1}'"; }

# One line per pod, the leader first: Open MPI fills it first (--map-by slot), so rank 0, the
# driver, runs here.
pod_hosts() {
  local pod="${LWS_LEADER_ADDRESS%%.*}" domain="" i
  [[ "$LWS_LEADER_ADDRESS" == *.* ]] && domain=".${LWS_LEADER_ADDRESS#*.}"
  echo "$LWS_LEADER_ADDRESS"
  for ((i = 1; i < LWS_GROUP_SIZE; i++)); do echo "$pod-$i$domain"; done
}

print_hostfile() {
  local host
  for host in $(pod_hosts); do echo "$host slots=$STRATA_SLOTS_PER_POD"; done
}

# Open MPI refuses mca_base_env_list together with -x, which launch-worker-group.sh uses: the
# list's variables are exported with -x instead (VAR=VALUE entries set here first).
fold_env_list() {
  local entry entries=()
  [ -n "${OMPI_MCA_mca_base_env_list:-}" ] && IFS=';' read -ra entries <<< "$OMPI_MCA_mca_base_env_list"
  unset OMPI_MCA_mca_base_env_list
  for entry in "${entries[@]}"; do
    [[ "$entry" == *=* ]] && export "${entry?}"
    listed+=("${entry%%=*}")
  done
}

exported_names() {
  { printf '%s\n' "${listed[@]}"; compgen -e | grep -E '^(NCCL_[A-Z0-9_]+|LD_LIBRARY_PATH)$' || true; } \
    | grep . | sort -u || true
}

# Waits until ssh into each worker runs `true`: its sshd is up and takes our key.
wait_for_workers() {
  local deadline=$((SECONDS + ${STRATA_SSH_WAIT_S:-300})) host error
  for host in "$@"; do
    until error="$(ssh "${ssh_opts[@]}" -o ConnectTimeout=5 "$host" true 2>&1)"; do
      ((SECONDS < deadline)) || die "no ssh into $host:$port within ${STRATA_SSH_WAIT_S:-300} s (is worker-entrypoint.sh running there, with this key's public half?): $error"
      sleep 2
    done
  done
}

print_only=0
[ "${1:-}" = --print-hostfile ] && { print_only=1; shift; }
need LWS_LEADER_ADDRESS "LeaderWorkerSet sets it; run this in a LeaderWorkerSet's leader pod"
need LWS_GROUP_SIZE "LeaderWorkerSet sets it"
STRATA_SLOTS_PER_POD="${STRATA_SLOTS_PER_POD:-1}"
positive LWS_GROUP_SIZE
positive STRATA_SLOTS_PER_POD
if ((print_only)); then print_hostfile; exit 0; fi

need STRATA_MODEL "the model's path in the /models volume"
need STRATA_ROUTER "the router's ZeroMQ endpoint, tcp://HOST:5557"
STRATA_TP="${STRATA_TP:-1}" STRATA_PP="${STRATA_PP:-1}"
positive STRATA_TP
positive STRATA_PP
ranks=$((STRATA_TP * STRATA_PP)) slots=$((LWS_GROUP_SIZE * STRATA_SLOTS_PER_POD))
((ranks == slots)) || die "STRATA_TP × STRATA_PP must equal LWS_GROUP_SIZE × STRATA_SLOTS_PER_POD. Given: $STRATA_TP × $STRATA_PP = $ranks ranks, $LWS_GROUP_SIZE × $STRATA_SLOTS_PER_POD = $slots slots"

hostfile="$(mktemp "${TMPDIR:-/tmp}/strata-hostfile.XXXXXX")"
print_hostfile > "$hostfile"
launch=(--hostfile "$hostfile" --tp "$STRATA_TP" --pp "$STRATA_PP" --router "$STRATA_ROUTER"
        --model "$STRATA_MODEL" --group-id "${STRATA_GROUP_ID:-${LWS_LEADER_ADDRESS%%.*}}")
[ -n "${STRATA_TRANSPORT_KEY_FILE:-}" ] && launch+=(--transport-key-file "$STRATA_TRANSPORT_KEY_FILE")
# In the image the binaries and scripts share one directory; in a checkout this is deploy/docker.
launcher="$here/launch-worker-group.sh"
[ -f "$launcher" ] || launcher="$here/../launch-worker-group.sh"
[ -x "$here/strata-worker" ] && launch+=(--strata-worker "$here/strata-worker")
listed=()
fold_env_list
for name in $(exported_names); do launch+=(--mpirun-arg -x --mpirun-arg "$name"); done

if ((LWS_GROUP_SIZE > 1)); then
  key_file="${STRATA_SSH_KEY:-/etc/strata/ssh/id_ed25519}"
  [ -r "$key_file" ] || die "$key_file is missing or unreadable: mount the Secret with the ssh private key there, or set STRATA_SSH_KEY"
  # ssh refuses a key that others may read, as a Secret volume's files can be: a private copy.
  key="$(mktemp "${TMPDIR:-/tmp}/strata-ssh-key.XXXXXX")"
  cat "$key_file" > "$key"
  # Host keys are made per container start, so there is none to pin; the client key authenticates.
  ssh_opts=(-p "$port" -i "$key" -o BatchMode=yes -o StrictHostKeyChecking=no
            -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR)
  mapfile -t workers < <(pod_hosts | tail -n +2)
  wait_for_workers "${workers[@]}"
  # Open MPI would shorten NAME-GROUP-i.SUBDOMAIN to NAME-GROUP-i, which does not resolve; and
  # without tree spawn no worker pod needs to ssh on to another.
  for arg in --mca plm_rsh_args "${ssh_opts[*]}" --mca orte_keep_fqdn_hostnames 1 \
             --mca plm_rsh_no_tree_spawn 1; do
    launch+=(--mpirun-arg "$arg")
  done
fi
exec "$launcher" "${launch[@]}" "$@"
