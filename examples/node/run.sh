#!/usr/bin/env bash
# Installs the pinned npm packages (npm ci from package-lock.json; skipped when
# node_modules already matches the lock file) and runs the Node client against
# a gateway:
#     examples/node/run.sh [HOST:PORT]
# The address defaults to $MP_GATEWAY_ADDR, else localhost:50051 (a sandbox
# gateway: `cargo run -- --sandbox`). MP_GATEWAY_TOKEN and ALARM_TIMEOUT_SECS
# are passed on (see client.js). Exits non-zero when a check fails.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

command -v npm >/dev/null ||
    { echo "examples/node: npm is missing; run scripts/examples (or apt-get install nodejs npm)" >&2; exit 2; }

# The copy of package-lock.json that node_modules was installed from.
stamp=node_modules/.installed-package-lock.json
if ! cmp -s package-lock.json "$stamp"; then
    # --ignore-scripts: none of these packages needs an install script.
    npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
    cp package-lock.json "$stamp"
fi

exec node client.js "$@"
