#!/bin/sh
# Generates the Go stubs of proto/ (agora/v1 and mesos/v1) into gen/, where
# go_package puts them (github.com/agora-broker/agora/clients/go/gen/...).
# gen/ is not committed: run this after a checkout and after any change to
# proto/. Needs protoc (Debian: protobuf-compiler) and the plugins
# protoc-gen-go and protoc-gen-go-grpc on PATH (Debian: packages of those
# names); $PROTOC names another protoc, which must find the well-known
# types (google/protobuf/*.proto) by itself.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
proto=$(cd "$here/../../proto" && pwd)
protoc=${PROTOC:-protoc}
module=github.com/agora-broker/agora/clients/go
for tool in "$protoc" protoc-gen-go protoc-gen-go-grpc; do
    if ! command -v "$tool" >/dev/null; then
        echo "generate.sh: $tool not found; on Debian: apt-get install protobuf-compiler protoc-gen-go protoc-gen-go-grpc" >&2
        exit 1
    fi
done
rm -rf "$here/gen"
cd "$proto"
# shellcheck disable=SC2046 # file names without spaces, by the layout
"$protoc" -I . \
    --go_out="$here" --go_opt=module="$module" \
    --go-grpc_out="$here" --go-grpc_opt=module="$module" \
    $(find agora mesos -name '*.proto' | LC_ALL=C sort)
