#!/usr/bin/env bash
# Installs what hoist needs to build and test on a Debian machine (run as root).
# Idempotent: packages already present are left alone, the venv is reused.
#   build:  gcc, make, clang (fuzzer, sanitizers), libjansson-dev (JSON), libssl-dev (sha256 in tests)
#   tests:  python3 with numpy and torch (CPU) from Debian; safetensors from PyPI in a venv
#           that sees the system packages (.venv, ignored by git); groff-base (the install
#           test renders the man page); shellcheck (a test checks bench/gpu/*.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential make clang clang-format libjansson-dev libssl-dev pkg-config groff-base shellcheck
      python3 python3-dev python3-venv python3-numpy python3-torch)
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python3 ]; then
    /usr/bin/python3 -m venv --system-site-packages .venv
fi
if ! .venv/bin/python3 -c 'import safetensors' 2>/dev/null; then
    .venv/bin/python3 -m pip install -q --disable-pip-version-check 'safetensors>=0.4'
fi
echo "setup: ok ($(.venv/bin/python3 -c 'import safetensors, numpy; print("safetensors", safetensors.__version__, "numpy", numpy.__version__)'))"
