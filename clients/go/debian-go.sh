#!/bin/sh
# Runs `go "$@"` in clients/go offline, against the Go libraries that
# Debian installs under /usr/share/gocode/src (golang-google-grpc-dev,
# golang-google-protobuf-dev, golang-github-golang-protobuf-1-5-dev,
# golang-google-genproto-dev and what they depend on). Debian ships
# sources, not module zips, so this uses GOPATH mode, as Debian's own
# builds do: a GOPATH under target/go holds a link to clients/go at its
# import path, beside /usr/share/gocode. No network, no module proxy.
#
#   clients/go/debian-go.sh vet ./...
#   clients/go/debian-go.sh test ./...
#
# With Go modules and network access, plain `go` works too: see README.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
gopath="$repo/target/go/gopath"
link="$gopath/src/github.com/agora-broker/agora/clients/go"
mkdir -p "$(dirname "$link")"
if [ "$(readlink "$link" 2>/dev/null)" != "$here" ]; then
    rm -f "$link"
    ln -s "$here" "$link"
fi
[ -d "$here/gen/agora/v1" ] || {
    echo "debian-go.sh: no stubs in $here/gen; run $here/generate.sh first" >&2
    exit 1
}
cd "$link"
GO111MODULE=off GOPROXY=off GOFLAGS= GOPATH="$gopath:${DEBIAN_GOCODE:-/usr/share/gocode}" \
    PWD="$link" exec go "$@"
