#!/usr/bin/env bash
# Installs every Debian and Python package that strata's build and tests need.
#   bash scripts/install-deps.sh [--sanitizers]
# Idempotent: prints nothing and changes nothing when all is present.
set -euo pipefail

debian_packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libgtest-dev libgmock-dev
  libopenblas-dev libpcre2-dev libutf8proc-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev
  libyaml-cpp-dev libzmq3-dev cppzmq-dev libmsgpack-cxx-dev libcpp-httplib-dev libboost-dev prometheus-cpp-dev
  libsentencepiece-dev libxxhash-dev openmpi-bin libopenmpi-dev
  python3 python3-pip python3-venv
  gnuplot-nox
  iproute2
)
# `kubectl kustomize` renders deploy/k8s in the manifest test: an installed kubectl (any
# source) is kept, otherwise Debian's. Test-only, like the Python packages below, so the
# images' build stages (STRATA_SKIP_PYTHON_DEPS=1, deploy/docker/) go without it.
if [ "${STRATA_SKIP_PYTHON_DEPS:-0}" != 1 ] && ! command -v kubectl >/dev/null; then
  debian_packages+=(kubernetes-client)
fi
# The verification lanes (scripts/build-sanitizers.sh, scripts/test-sanitizers.sh) add clang
# and its sanitizer and libFuzzer runtimes.
[ "${1:-}" = --sanitizers ] && debian_packages+=(clang libclang-rt-dev)

missing=()
for p in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing Debian packages: ${missing[*]}" >&2
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# sshd for tests/e2e/test_multihost.py's LeaderWorkerSet pods (deploy/docker/worker-entrypoint.sh
# runs it as a non-root user): unpacked from Debian's package into a cache, never installed,
# because installing openssh-server starts a system ssh service. Test-only, like the below.
sshd_root="${STRATA_TEST_SSHD_ROOT:-$HOME/.cache/strata-test-sshd}"
if [ "${STRATA_SKIP_PYTHON_DEPS:-0}" != 1 ] && [ ! -x "$sshd_root/usr/sbin/sshd" ]; then
  echo "install-deps: unpacking openssh-server into $sshd_root (for the multi-host test)" >&2
  fetch_dir="$(mktemp -d)"
  (cd "$fetch_dir" && { apt-get download -qq openssh-server libwrap0 2>/dev/null ||
                        { ${sudo_cmd:-} apt-get update -qq && apt-get download -qq openssh-server libwrap0; }; })
  mkdir -p "$sshd_root"
  for deb in "$fetch_dir"/*.deb; do dpkg-deb -x "$deb" "$sshd_root"; done
  rm -rf "$fetch_dir"
fi

# Python packages used only by tests, as independent references (writers and tokenizers
# that nobody here wrote). Pinned so reference outputs do not drift under us.
if [ "${STRATA_SKIP_PYTHON_DEPS:-0}" != 1 ]; then
  python_packages=(numpy==1.26.4 safetensors==0.4.5 sentencepiece==0.2.0 tokenizers==0.20.3
                   transformers==4.46.3 protobuf==5.28.3
                   openai==1.55.3 httpx==0.27.2 pytest==8.3.3
                   gguf==0.16.3 jinja2==3.1.6 pyyaml==6.0.3
                   jsonschema==4.26.0 kubernetes-validate==1.32.0 dockerfile-parse==2.0.1)
  python3 - "${python_packages[@]}" <<'PY' || python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore "${python_packages[@]}"
import sys
from importlib.metadata import version, PackageNotFoundError
for spec in sys.argv[1:]:
    name, want = spec.split("==")
    try:
        if version(name) != want:
            sys.exit(1)
    except PackageNotFoundError:
        sys.exit(1)
PY
fi
