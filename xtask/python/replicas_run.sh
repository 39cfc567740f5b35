#!/usr/bin/env bash
# `cargo xtask replicas`: installs what it needs (HAProxy and nginx from Debian when missing, the pinned
# clients of tools.sh), then runs replicas.py.
#
# usage: xtask/python/replicas_run.sh VMCP_BINARY VMCP_BENCH_BINARY [--quick] [--sessions N]
#   REPLICAS_POSTGRES: an admin URL of a Postgres server (a scratch database is made on it)
#   REPLICAS_OUT: logs and replicas.json; REPLICAS_REPORT: the Markdown report to update
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
vmcp="$1"; bench="$2"; shift 2
tools="${VMCP_TOOLS_DIR:-$HOME/.cache/vmcp-tools}"
out="${REPLICAS_OUT:-$(mktemp -d /tmp/vmcp-replicas.XXXXXX)}"
mkdir -p "$out"

source "$here/tools.sh"
install_tools

missing=""
command -v haproxy > /dev/null || missing="haproxy"
command -v nginx > /dev/null || missing="$missing nginx"
if [ -n "$missing" ]; then
    echo "installing:$missing (Debian packages)" >&2
    if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq $missing > /dev/null
    # Services the packages may have started are not ours.
    $sudo service haproxy stop > /dev/null 2>&1 || true
    $sudo service nginx stop > /dev/null 2>&1 || true
fi
haproxy -v | head -1 >&2
nginx -v
command -v psql > /dev/null || { echo "psql (the PostgreSQL client) is needed" >&2; exit 2; }
export PG_VERSION="$(psql "$REPLICAS_POSTGRES" -tAc 'SHOW server_version' | cut -d' ' -f1) "

exec "$venv/bin/python" "$here/replicas.py" --vmcp "$vmcp" --bench "$bench" --node "$node" \
    --npm-dir "$npm_dir" --postgres "$REPLICAS_POSTGRES" --out "$out" \
    --report "${REPLICAS_REPORT:-}" "$@"
