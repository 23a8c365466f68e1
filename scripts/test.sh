#!/usr/bin/env bash
# Install everything the test suite needs into .venv and run the whole suite.
# On Debian/Ubuntu it installs Xvfb (as root, or with sudo) so that the napari GUI tests run on a
# virtual display through pytest-xvfb; nothing here needs a real screen or a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

if ! command -v Xvfb >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0 libxcb-xinerama0 \
    libxcb-shape0 libxcb-cursor0 libxkbcommon-x11-0 libgl1 libegl1 libfontconfig1 libdbus-1-3 >/dev/null
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[testing]"
# No display variables: pytest-xvfb starts its own virtual X server.
unset DISPLAY QT_QPA_PLATFORM WAYLAND_DISPLAY
exec .venv/bin/python -m pytest "$@"
