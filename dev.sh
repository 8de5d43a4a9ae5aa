#!/usr/bin/env bash
# classpulse set-up and entry points. Creates everything it needs on a fresh machine.
#   ./dev.sh demo    the main job on the built-in default
#   ./dev.sh test    every test (installs Debian's postgresql, janus and chromium when missing)
set -euo pipefail
cd "$(dirname "$0")"

VENV=${CLASSPULSE_VENV:-.venv}
PY=${PYTHON:-python3}

ensure_venv() {
    local stamp="$VENV/.classpulse-installed"
    if [[ ! -x "$VENV/bin/python" ]]; then
        "$PY" -m venv "$VENV"
    fi
    # Reinstall only when pyproject.toml changed since the last install.
    if [[ ! -f "$stamp" || pyproject.toml -nt "$stamp" ]]; then
        "$VENV/bin/python" -m pip install --quiet --upgrade pip
        "$VENV/bin/python" -m pip install --quiet -e ".[dev,ray]"
        touch "$stamp"
    fi
}

ensure_debian_packages() {
    local missing=()
    command -v janus >/dev/null 2>&1 || missing+=(janus)
    command -v chromium >/dev/null 2>&1 || missing+=(chromium)
    [[ -x "$(ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | head -1)" ]] || missing+=(postgresql)
    command -v ip >/dev/null 2>&1 || missing+=(iproute2)
    command -v unshare >/dev/null 2>&1 || missing+=(util-linux)
    if ((${#missing[@]})); then
        if [[ $(id -u) -ne 0 ]]; then
            echo "dev.sh: need root to apt-get install ${missing[*]}" >&2
            exit 1
        fi
        echo "dev.sh: installing Debian packages: ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

case "${1:-}" in
    demo)
        shift
        ensure_venv
        exec "$VENV/bin/classpulse" demo "$@"
        ;;
    test)
        shift
        ensure_debian_packages
        ensure_venv
        exec "$VENV/bin/python" -m pytest "$@"
        ;;
    *)
        echo "usage: ./dev.sh demo | ./dev.sh test [pytest args]" >&2
        exit 2
        ;;
esac
