#!/usr/bin/env bash
# Debian packages newslab needs, installed when missing: as root with apt-get, otherwise named in one
# line (exit 1, or 0 with --optional). Shared by the Makefile (`make test`, `make manual`) and .ci/run.
#   usage: .ci/system-packages.sh [--optional] PACKAGE...
set -euo pipefail
optional=0
if [ "${1:-}" = "--optional" ]; then optional=1; shift; fi
command -v dpkg >/dev/null 2>&1 || { echo "newslab: not a Debian system: install the equivalents of: $*" >&2; exit "$((1 - optional))"; }
missing=()
for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
    echo "newslab: missing Debian packages; as root run: apt-get install -y ${missing[*]}" >&2
    exit "$((1 - optional))"
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq && apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
