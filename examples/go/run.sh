#!/usr/bin/env bash
# Generates the Go stubs of linksfield.mp.v1 from ../../proto, builds the Go
# client (main.go) and runs it against a gateway:
#     examples/go/run.sh [HOST:PORT] [-token T] [-alarm-timeout 60s]
# The address defaults to $MP_GATEWAY_ADDR, else localhost:50051 (a sandbox
# gateway: `cargo run -- --sandbox`). Exits non-zero when a check fails.
#
# Offline, from Debian packages only (scripts/examples installs them): golang-go,
# protobuf-compiler, protoc-gen-go, protoc-gen-go-grpc, golang-google-grpc-dev,
# golang-google-genproto-dev. The build runs in GOPATH mode (GO111MODULE=off):
# the stubs are generated into gen/src/<go_package> (git-ignored) and the
# libraries come from /usr/share/gocode, so no module proxy is needed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
gen="$here/gen"

for tool in go protoc protoc-gen-go protoc-gen-go-grpc; do
    command -v "$tool" >/dev/null ||
        { echo "examples/go: $tool is missing; run scripts/examples (or apt-get install it)" >&2; exit 2; }
done

# go_package in the protos: github.com/linksfield/mp-gateway/gen/go/linksfield/mp/v1
rm -rf "$gen/src/github.com/linksfield/mp-gateway/gen/go"
mkdir -p "$gen/src" "$gen/bin"
(cd "$here/../../proto" &&
    protoc -I . --go_out="$gen/src" --go-grpc_out="$gen/src" linksfield/mp/v1/*.proto)

export GO111MODULE=off GOFLAGS= GOPATH="$gen:/usr/share/gocode"
go build -o "$gen/bin/mp-gateway-example" "$here/main.go"

args=("$@")
if [[ ${#args[@]} -eq 0 || "${args[0]}" == -* ]]; then
    args=("${MP_GATEWAY_ADDR:-localhost:50051}" "${args[@]}")
fi
# The address is the first argument; main.go takes flags first, then it.
exec "$gen/bin/mp-gateway-example" "${args[@]:1}" "${args[0]}"
