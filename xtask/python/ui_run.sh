#!/usr/bin/env bash
# Starts a vMCP on a free loopback port with a temporary SQLite database, runs the dashboard's
# browser test (ui_test.py) against it, and stops it. This builds nothing.
#
# usage: xtask/python/ui_run.sh VMCP_BINARY FIXTURE_BINARY [ui_test.py options, e.g. --screenshots docs/ui]
#   UI_TOKEN=... runs the server with that API token (at least 16 characters) and signs in with it.
#   PYTHON (default python3) is the interpreter that has Playwright.
set -euo pipefail

vmcp="${1:?usage: ui_run.sh VMCP_BINARY FIXTURE_BINARY [ui_test options]}"
fixture="${2:?usage: ui_run.sh VMCP_BINARY FIXTURE_BINARY [ui_test options]}"
shift 2
here="$(cd "$(dirname "$0")" && pwd)"
python="${PYTHON:-python3}"
work="$(mktemp -d /tmp/vmcp-ui.XXXXXX)"
port="$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

token_args=()
test_args=()
if [ -n "${UI_TOKEN:-}" ]; then
    token_args=(--api-token "$UI_TOKEN")
    test_args=(--token "$UI_TOKEN")
fi

"$vmcp" --bind "127.0.0.1:$port" --database-url "sqlite://$work/vmcp.db" "${token_args[@]}" >"$work/vmcp.log" 2>&1 &
pid=$!
cleanup() {
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

for _ in $(seq 1 100); do
    if "$python" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$port/health', timeout=1)" 2>/dev/null; then
        break
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "vmcp exited at start:" >&2
        cat "$work/vmcp.log" >&2
        exit 2
    fi
    sleep 0.1
done

status=0
"$python" "$here/ui_test.py" --base "http://127.0.0.1:$port" --fixture "$fixture" "${test_args[@]}" "$@" || status=$?
if [ "$status" -ne 0 ]; then
    echo "--- the last lines of the vmcp log ($work/vmcp.log):" >&2
    tail -n 30 "$work/vmcp.log" >&2
fi
exit "$status"
