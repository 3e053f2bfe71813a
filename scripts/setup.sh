#!/usr/bin/env bash
# Installs what hoist needs to build and test on a Debian machine (run as root).
# Idempotent: packages already present are left alone, the venv is reused.
#   build:  gcc, make, clang (fuzzer, sanitizers), libjansson-dev (JSON), libxxhash-dev (XXH3,
#           for hoist verify), libssl-dev (sha256 in tests)
#   tests:  python3 with numpy and torch (CPU), its headers and setuptools from Debian (the
#           extension); from PyPI, in a venv that sees the system packages (.venv, ignored
#           by git): safetensors, and transformers and accelerate at the versions the
#           Python tests pin; groff-base (the install test renders the man page); shellcheck
#           (a test checks bench/gpu/*.sh)
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential make clang clang-format libjansson-dev libxxhash-dev libssl-dev pkg-config groff-base
      shellcheck
      python3 python3-dev python3-venv python3-numpy python3-torch python3-setuptools
      python3-wheel python3-packaging)
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
# The Python tests run against these exact releases (python/NOTES.md): transformers
# 4.46 is the last that takes Debian's torch 1.13.
PY_PINS=('safetensors>=0.4' 'transformers==4.46.3' 'accelerate==0.34.2')
if ! .venv/bin/python3 -c 'import safetensors, transformers, accelerate
assert transformers.__version__ == "4.46.3" and accelerate.__version__ == "0.34.2"' 2>/dev/null; then
    .venv/bin/python3 -m pip install -q --disable-pip-version-check "${PY_PINS[@]}"
fi
echo "setup: ok ($(.venv/bin/python3 -c 'import safetensors, numpy, transformers, accelerate; print("safetensors", safetensors.__version__, "numpy", numpy.__version__, "transformers", transformers.__version__, "accelerate", accelerate.__version__)'))"
