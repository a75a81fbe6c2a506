#!/usr/bin/env bash
# Prints the packages (one a line) whose shared libraries the given binaries load directly,
# found with ldd and dpkg -S on the machine that built them:
#   deploy/docker/runtime-packages.sh build/bin/strata build/bin/strata-router build/bin/strata-worker
# Dockerfile.cuda's build stage runs it so that its runtime stage installs Ubuntu's names for
# what Debian 12 calls e.g. libyaml-cpp0.7 (tests/deploy/test_dockerfiles.py checks it against
# Dockerfile.cpu's list). Libraries these packages load in turn come with them as Depends;
# libc6, libstdc++6 and libgcc-s1 come with every base image. A library no package owns (a
# CUDA toolkit unpacked from a tarball) is named on stderr: the runtime image must bring it.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }

# The path of each library the binaries name themselves (DT_NEEDED), as ldd resolves it; not
# those their libraries pull in.
needed_paths() {
  local binary libs soname path
  for binary in "$@"; do
    [ -f "$binary" ] || { echo "runtime-packages: $binary not found" >&2; return 2; }
    libs="$(ldd "$binary")"
    for soname in $(readelf -d "$binary" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'); do
      path="$(awk -v n="$soname" '$1 == n && $3 ~ /^\// { print $3 }' <<< "$libs")"
      [ -n "$path" ] || { echo "runtime-packages: $binary needs $soname, which ldd cannot find" >&2; return 1; }
      echo "$path"
    done
  done
}

owner() {
  local path="$1" real
  real="$(readlink -f "$path")"
  { dpkg -S "$real" 2>/dev/null || dpkg -S "$path" 2>/dev/null || true; } | head -n 1 | cut -d: -f1
}

paths="$(needed_paths "$@" | sort -u)"
for path in $paths; do
  package="$(owner "$path")"
  if [ -z "$package" ]; then
    echo "runtime-packages: $path belongs to no package" >&2
    continue
  fi
  case "$package" in libc6|libstdc++6|libgcc-s1) ;; *) echo "$package" ;; esac
done | sort -u
