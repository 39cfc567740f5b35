#!/usr/bin/env bash
# `cargo xtask oauth`: installs the pinned parts (tools.sh: the SDK clients, the Python SDK,
# oidc-provider) and runs xtask/python/oauth.py against VMCP_BINARY.
# usage: xtask/python/oauth_run.sh VMCP_BINARY   (env: OAUTH_OUT, CONFORMANCE, NODE22)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
binary="${1:?usage: oauth_run.sh VMCP_BINARY}"
tools="${VMCP_TOOLS_DIR:-$HOME/.cache/vmcp-tools}"
source "$here/tools.sh"
install_oauth_tools
export NODE="$node" PYTHON="$venv/bin/python" VMCP_TOOLS_DIR="$tools"
exec "$venv/bin/python" "$here/oauth.py" "$binary"
