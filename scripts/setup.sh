#!/usr/bin/env bash
# Idempotent set-up: system GDAL, a .venv with numpy + matching GDAL bindings, then spectralmatch.
# Usage: scripts/setup.sh [--dev] [--cloud]     (run from anywhere; works as root on Debian 12)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV="${SPECTRALMATCH_VENV:-$ROOT/.venv}"
EXTRAS=""
for arg in "$@"; do
  case "$arg" in
    --dev) EXTRAS="${EXTRAS:+$EXTRAS,}dev" ;;
    --cloud) EXTRAS="${EXTRAS:+$EXTRAS,}cloud" ;;
    *) echo "setup.sh: unknown option '$arg' (accepted: --dev, --cloud)" >&2; exit 2 ;;
  esac
done
say() { printf '[setup] %s\n' "$*" >&2; }

manual_steps() {
  cat >&2 <<'TXT'
[setup] GDAL (library, headers and gdal-config) is required and could not be installed here.
Install it yourself, then run this script again:
  * Debian/Ubuntu:  sudo apt-get install -y libgdal-dev gdal-bin python3-venv
  * macOS (Homebrew): brew install gdal
  * conda/mamba:    conda install -c conda-forge gdal numpy cython cmake
                    (then: pip install --no-build-isolation -e ".[dev]" in that environment)
Then make a virtual environment and install the matching bindings:
  python3 -m venv .venv && . .venv/bin/activate
  pip install numpy setuptools wheel
  pip install --no-build-isolation "gdal==$(gdal-config --version)"
  pip install -e ".[dev]"
TXT
}

# 1. System GDAL.
if ! command -v gdal-config >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    say "installing libgdal-dev gdal-bin with apt-get"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgdal-dev gdal-bin >/dev/null
  elif command -v apt-get >/dev/null 2>&1 && command -v sudo >/dev/null 2>&1; then
    say "installing libgdal-dev gdal-bin with sudo apt-get"
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libgdal-dev gdal-bin >/dev/null
  else
    manual_steps; exit 1
  fi
fi
command -v gdal-config >/dev/null 2>&1 || { manual_steps; exit 1; }
GDAL_VERSION=$(gdal-config --version)

# 2. Virtual environment.
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
  say "creating $VENV"
  "$PY" -m venv "$VENV"
fi
VPY="$VENV/bin/python"
pip_q() { "$VPY" -m pip install -q --disable-pip-version-check "$@"; }

# 3. numpy + GDAL bindings matching the system library (built against the venv's numpy).
if ! "$VPY" -c "import numpy, setuptools, wheel" >/dev/null 2>&1; then
  say "installing numpy, setuptools, wheel"
  pip_q numpy setuptools wheel
fi
if ! "$VPY" -c "from osgeo import gdal, gdal_array; import sys; sys.exit(gdal.__version__ != '$GDAL_VERSION')" >/dev/null 2>&1; then
  say "building GDAL $GDAL_VERSION Python bindings (about 80 s)"
  pip_q --no-build-isolation --no-cache-dir "gdal==$GDAL_VERSION"
fi
"$VPY" -c "from osgeo import gdal_array" 2>/dev/null || {
  say "osgeo.gdal_array is missing: the bindings were built without numpy."
  say "Fix: $VPY -m pip install --no-build-isolation --force-reinstall --no-cache-dir gdal==$GDAL_VERSION"
  exit 1; }

# 4. Build tools and the project itself (editable, compiled kernels).
if ! "$VPY" -c "import scikit_build_core, cython_cmake, Cython" >/dev/null 2>&1; then
  say "installing build tools"
  pip_q "scikit-build-core>=0.10" "cython>=3.0" "cython-cmake>=0.2" "cmake>=3.21" ninja
fi
STAMP="$VENV/.spectralmatch-installed"
WANT="$(cat pyproject.toml CMakeLists.txt src_cython/*.pyx src_cython/*.pxd 2>/dev/null | sha1sum | cut -c1-40) extras=$EXTRAS"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ] || ! "$VPY" -c "import spectralmatch._kernels.moments" >/dev/null 2>&1; then
  say "installing spectralmatch${EXTRAS:+[$EXTRAS]} (editable)"
  pip_q --no-build-isolation -e ".${EXTRAS:+[$EXTRAS]}"
  echo "$WANT" > "$STAMP"
fi
say "ready: $VENV ($("$VPY" -c 'import spectralmatch; print("spectralmatch", spectralmatch.__version__)'), GDAL $GDAL_VERSION)"
