#!/usr/bin/env bash
# A worker pod of a multi-host worker group: runs sshd, as this image's non-root user, so that
# the leader's mpirun (deploy/docker/lws-launch.sh) can start ranks here; then waits in it.
#   worker-entrypoint.sh [sshd options, e.g. -o ListenAddress=10.0.0.5]
#   STRATA_SSH_AUTHORIZED_KEYS  the leader's public key (default /etc/strata/ssh/authorized_keys,
#                               a mounted Secret)
#   STRATA_SSH_PORT             port sshd listens on (default 2222: a non-root user may bind it)
#   STRATA_SSHD_DIR             writable directory for host keys and config (default /tmp/strata-sshd)
#   STRATA_SSHD                 the sshd binary (default /usr/sbin/sshd)
set -euo pipefail
keys="${STRATA_SSH_AUTHORIZED_KEYS:-/etc/strata/ssh/authorized_keys}"
port="${STRATA_SSH_PORT:-2222}"
dir="${STRATA_SSHD_DIR:-/tmp/strata-sshd}"
sshd="${STRATA_SSHD:-/usr/sbin/sshd}"

[ -r "$keys" ] || { echo "worker-entrypoint: $keys is missing or unreadable: mount the Secret with the leader's public key there, or set STRATA_SSH_AUTHORIZED_KEYS" >&2; exit 2; }
user="$(id -un 2>/dev/null)" || { echo "worker-entrypoint: uid $(id -u) has no account in /etc/passwd, so sshd would let no one in: run the pod as uid 1000 (user strata)" >&2; exit 2; }

# shellcheck disable=SC2174  # only the last directory is ours to close
mkdir -p -m 700 "$dir"
install -m 600 "$keys" "$dir/authorized_keys"
# Host keys are made per container, never baked into the image (every container would share
# them); the leader does not pin them (lws-launch.sh), its client key is what authenticates.
[ -f "$dir/ssh_host_ed25519_key" ] || ssh-keygen -q -t ed25519 -N '' -f "$dir/ssh_host_ed25519_key"
# StrictModes off: it refuses keys under a world-writable parent such as /tmp or an emptyDir,
# and the only key file is the private copy made above. No PAM: it needs root.
cat > "$dir/sshd_config" <<CONF
Port $port
HostKey $dir/ssh_host_ed25519_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
AllowUsers $user
StrictModes no
UsePAM no
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
CONF
echo "worker-entrypoint: sshd for $user on port $port" >&2
exec "$sshd" -D -e -f "$dir/sshd_config" "$@"
