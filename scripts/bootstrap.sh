#!/usr/bin/env bash
# Set up a fresh machine for the embedded default: system libraries, a virtualenv on the
# system python3 (it can load SQLite extensions; pyenv builds can't) and the locked deps.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

need_apt=()
command -v gdalinfo >/dev/null 2>&1 || need_apt+=(gdal-bin)
ls /usr/lib/*/mod_spatialite.so >/dev/null 2>&1 || need_apt+=(libsqlite3-mod-spatialite)
/usr/bin/python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need_apt+=(python3-venv)
# A CJK font for donation certificates (rewards/vouchers/certificate.py finds it at runtime).
ls /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc >/dev/null 2>&1 || need_apt+=(fonts-noto-cjk)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "bootstrap: installing system packages: ${need_apt[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q "${need_apt[@]}"
fi

if [ ! -x .tools/bin/uv ]; then
    /usr/bin/python3 -m venv .tools
    .tools/bin/pip install -q "uv==0.9.5"
fi
export UV_PYTHON=/usr/bin/python3 UV_PROJECT_ENVIRONMENT=.venv UV_LINK_MODE=copy
.tools/bin/uv sync --frozen --quiet
mkdir -p var/static
