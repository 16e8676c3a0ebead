#!/usr/bin/env bash
# Generates the Python stubs of linksfield.mp.v1 from ../../proto into gen/
# (or into the folder given as the first argument). Needs grpcio-tools
# (pip install -r ../../requirements-dev.txt). PYTHON picks the interpreter.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/gen}"
mkdir -p "$out"
cd "$here/../../proto"
"${PYTHON:-python3}" -m grpc_tools.protoc -I . \
    --python_out="$out" --pyi_out="$out" --grpc_python_out="$out" \
    linksfield/mp/v1/*.proto
echo "stubs in $out"
